"""Writers of tiny dataset files in each dataset's real on-disk format (for ``tmp_path``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fedledger.data.nsl_kdd import COLUMNS


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, gzip-compressed when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def nsl_row(rng: np.random.Generator, label: str) -> str:
    """One 43-column NSL-KDD line."""
    values: list[str] = []
    for name in COLUMNS:
        if name == "protocol_type":
            values.append(str(rng.choice(["tcp", "udp", "icmp"])))
        elif name == "service":
            values.append(str(rng.choice(["http", "ftp_data", "private", "smtp"])))
        elif name == "flag":
            values.append(str(rng.choice(["SF", "S0", "REJ"])))
        elif name.endswith("rate"):
            values.append(f"{rng.random():.2f}")
        else:
            values.append(str(int(rng.integers(0, 5000))))
    return ",".join([*values, label, str(int(rng.integers(0, 22)))])


NSL_LABELS = ["normal", "neptune", "smurf", "satan", "ipsweep", "guess_passwd", "rootkit"]


def feature_csv(
    rng: np.random.Generator, n: int, n_features: int, extra: dict[str, list[str]] | None = None
) -> str:
    """A CSV with header ``f0..f{k-1}`` plus extra string columns."""
    extra = extra or {}
    header = [f"f{j}" for j in range(n_features)] + list(extra)
    x = rng.normal(size=(n, n_features))
    lines = [",".join(header)]
    for i in range(n):
        cells = [f"{v:.4f}" for v in x[i]] + [col[i % len(col)] for col in extra.values()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
