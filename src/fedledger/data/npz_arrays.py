"""``npz`` loader: preprocessed arrays used exactly as given (how benchmark W1 runs).

Keys: ``x_train`` ``[N, ...]``, ``y_train`` int ``[N]``, optional ``client`` int ``[N]`` (the
device of each row, becomes the natural device column), optional ``x_test``/``y_test``, optional
``feature_names``, ``classes`` (str) and ``benign_class`` (an integer scalar, a class index).
Nothing is rescaled or cleaned: :func:`fedledger.data.build_federated` refuses NaN/Inf features
instead of replacing them. Arrays are loaded with ``allow_pickle=False``, so a file that needs
unpickling is rejected.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.labels import BENIGN_NAMES
from fedledger.data.sources import require_file
from fedledger.data.types import RawDataset, Table
from fedledger.errors import DataError

__all__ = ["load_npz", "read_npz"]

_EXPECTED = "an .npz file with x_train, y_train [, client, x_test, y_test]"


def _labels(y: np.ndarray, path: Path, key: str, n: int) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{path}: {key} has shape {y.shape}, expected ({n},)")
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and bool(np.all(np.mod(y, 1) == 0))
    )
    if y.size and not integral:
        raise DataError(f"{path}: {key} must hold integer class indices")
    out = y.astype(np.int64)
    if out.size and out.min() < 0:
        raise DataError(f"{path}: {key} has negative class indices")
    return out


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, loaded with ``allow_pickle=False``.

    Raises
    ------
    DataError
        The file is not a readable npz archive, or an array needs unpickling.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def _benign(value: np.ndarray, path: Path, n_classes: int) -> int:
    """``benign_class`` as an int, checked to be an integer scalar in ``0..n_classes - 1``."""
    expected = f"an integer class index in 0..{n_classes - 1}"
    if value.ndim != 0:
        raise DataError(f"{path}: benign_class must be {expected}, got shape {value.shape}")
    integral = np.issubdtype(value.dtype, np.integer) or (
        np.issubdtype(value.dtype, np.floating) and float(value).is_integer()
    )
    if not integral:
        raise DataError(f"{path}: benign_class must be {expected}, got {str(value.item())[:40]!r}")
    benign = int(value)
    if not 0 <= benign < n_classes:
        raise DataError(f"{path}: benign_class must be {expected}, got {benign}")
    return benign


def _classes(
    arrays: dict[str, np.ndarray], n_classes: int, path: Path
) -> tuple[tuple[str, ...], int | None]:
    if "classes" in arrays:
        names = tuple(str(c) for c in arrays["classes"].reshape(-1))
        benign = next((i for i, c in enumerate(names) if c.lower() in BENIGN_NAMES), None)
    else:
        names = tuple(str(i) for i in range(n_classes))
        benign = None
    if "benign_class" in arrays:
        benign = _benign(arrays["benign_class"], path, len(names))
    return names, benign


def _width(x: np.ndarray) -> int:
    """Values per row; explicit so an array with zero rows still reshapes."""
    return int(np.prod(x.shape[1:]))


def load_npz(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load the arrays file ``cfg.path``.

    Raises
    ------
    DatasetNotFoundError
        ``cfg.path`` does not exist.
    DataError
        A required key is missing, shapes disagree (e.g. ``x_test`` has a different number of
        features than ``x_train``), labels are not class indices, or ``benign_class`` is not an
        integer scalar naming one of the classes.
    """
    path = require_file(cfg.path, "npz", _EXPECTED)
    arrays = read_npz(path)
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (has {', '.join(sorted(arrays))})")
    x = arrays["x_train"]
    if x.ndim < 2:
        raise DataError(f"{path}: x_train must be [rows, features...], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{path}: x_train must be numeric, got dtype {x.dtype}")
    n = x.shape[0]
    y = _labels(arrays["y_train"], path, "y_train", n)
    groups = None
    if "client" in arrays:
        groups = _labels(arrays["client"], path, "client", n)
    test = None
    if "x_test" in arrays or "y_test" in arrays:
        if "x_test" not in arrays or "y_test" not in arrays:
            raise DataError(f"{path}: x_test and y_test must come together")
        xt = arrays["x_test"]
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path}: x_test rows have shape {xt.shape[1:]}, x_train rows {x.shape[1:]}"
            )
        yt = _labels(arrays["y_test"], path, "y_test", xt.shape[0])
        test = Table(
            numeric=xt.reshape(xt.shape[0], _width(xt)),
            categorical=np.zeros((xt.shape[0], 0), dtype=str),
            labels=yt,
        )
    top = max(int(y.max(initial=0)), int(test.labels.max(initial=0)) if test else 0)
    classes, benign = _classes(arrays, top + 1, path)
    if len(classes) <= top:
        raise DataError(f"{path}: label {top} but only {len(classes)} class names")
    names = arrays.get("feature_names")
    return RawDataset(
        name="npz",
        kind="arrays",
        classes=classes,
        train=Table(
            numeric=x.reshape(n, _width(x)),
            categorical=np.zeros((n, 0), dtype=str),
            labels=y,
            groups=groups,
        ),
        test=test,
        numeric_names=tuple(str(s) for s in names) if names is not None else (),
        image_shape=tuple(int(d) for d in x.shape[1:]) if x.ndim > 2 else None,
        benign_class=benign,
    )
