"""Feature preprocessing fitted from per-device sums, never from pooled raw rows.

Each device summarises its own rows in a :class:`ClientStats`: a row count, the per-column sum
and sum of squares of ``sign(x) * log1p(|x|)`` (which tames heavy-tailed counters), and the set of
categorical values it has seen. Summaries combine with :meth:`ClientStats.merge` (what a secure
aggregation of these sums would reveal), and :meth:`Preprocessor.fit` turns the combined summary
into a z-score (std floor ``1e-6``, output clipped to ``[-10, 10]``) and a one-hot vocabulary
(the sorted union of values, plus one "unknown" column per categorical feature for values never
seen in training). The empty string means "feature absent" and encodes as all zeros.

Non-finite numbers (NaN, inf in a CSV) are replaced by 0 and counted, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CLIP", "STD_FLOOR", "ClientStats", "Preprocessor", "clean", "signed_log1p"]

STD_FLOOR = 1e-6
CLIP = 10.0


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``, elementwise."""
    out: np.ndarray = np.copysign(np.log1p(np.abs(x)), x)
    return out


def clean(numeric: np.ndarray) -> tuple[np.ndarray, int]:
    """float64 copy with non-finite values replaced by 0, and how many were replaced."""
    x = np.asarray(numeric, dtype=np.float64)
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x = np.where(bad, 0.0, x)
    return x, count


@dataclass
class ClientStats:
    """Sufficient statistics of one device's (or several merged devices') training rows.

    Attributes
    ----------
    count
        Number of rows.
    total, total_sq
        Per numeric column sum and sum of squares of the signed-log1p values.
    categories
        Per categorical column, the set of values seen.
    nonfinite
        Non-finite numeric cells replaced by 0.
    """

    n_numeric: int
    n_categorical: int
    count: int = 0
    total: np.ndarray = field(init=False)
    total_sq: np.ndarray = field(init=False)
    categories: list[set[str]] = field(init=False)
    nonfinite: int = 0

    def __post_init__(self) -> None:
        self.total = np.zeros(self.n_numeric, dtype=np.float64)
        self.total_sq = np.zeros(self.n_numeric, dtype=np.float64)
        self.categories = [set() for _ in range(self.n_categorical)]

    def add(self, numeric: np.ndarray, categorical: np.ndarray) -> ClientStats:
        """Add rows (``[n, n_numeric]`` numbers, ``[n, n_categorical]`` strings); returns self."""
        x, bad = clean(numeric)
        x = signed_log1p(x)
        self.count += int(x.shape[0])
        self.total += x.sum(axis=0)
        self.total_sq += np.square(x).sum(axis=0)
        self.nonfinite += bad
        for j in range(self.n_categorical):
            self.categories[j].update(categorical[:, j].tolist())
            self.categories[j].discard("")
        return self

    def merge(self, other: ClientStats) -> ClientStats:
        """A new summary of both devices' rows (the inputs are left unchanged)."""
        out = ClientStats(self.n_numeric, self.n_categorical)
        out.count = self.count + other.count
        out.total = self.total + other.total
        out.total_sq = self.total_sq + other.total_sq
        out.categories = [a | b for a, b in zip(self.categories, other.categories, strict=True)]
        out.nonfinite = self.nonfinite + other.nonfinite
        return out

    @property
    def mean(self) -> np.ndarray:
        """Per-column mean of the signed-log1p values."""
        return self.total / max(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        """Per-column population standard deviation, floored at :data:`STD_FLOOR`."""
        var = self.total_sq / max(self.count, 1) - np.square(self.mean)
        out: np.ndarray = np.maximum(np.sqrt(np.maximum(var, 0.0)), STD_FLOOR)
        return out


@dataclass(frozen=True)
class Preprocessor:
    """A fitted transform: signed log1p, z-score, clip, then one-hot with an unknown bucket."""

    mean: np.ndarray
    std: np.ndarray
    vocab: tuple[tuple[str, ...], ...]
    numeric_names: tuple[str, ...] = ()
    categorical_names: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        stats: ClientStats,
        numeric_names: tuple[str, ...] = (),
        categorical_names: tuple[str, ...] = (),
    ) -> Preprocessor:
        """The transform defined by merged per-device statistics."""
        return cls(
            mean=stats.mean,
            std=stats.std,
            vocab=tuple(tuple(sorted(values)) for values in stats.categories),
            numeric_names=numeric_names,
            categorical_names=categorical_names,
        )

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0]) + sum(len(v) + 1 for v in self.vocab)

    @property
    def feature_names(self) -> tuple[str, ...]:
        num = list(self.numeric_names) or [f"x{j}" for j in range(self.mean.shape[0])]
        cats = list(self.categorical_names) or [f"c{j}" for j in range(len(self.vocab))]
        names = list(num)
        for col, values in zip(cats, self.vocab, strict=True):
            names += [f"{col}={v}" for v in values] + [f"{col}=<unknown>"]
        return tuple(names)

    @property
    def feature_groups(self) -> tuple[int, ...]:
        """Per output column, ``-1`` if numeric, else the index of its categorical feature."""
        groups = [-1] * int(self.mean.shape[0])
        for j, values in enumerate(self.vocab):
            groups += [j] * (len(values) + 1)
        return tuple(groups)

    def transform(self, numeric: np.ndarray, categorical: np.ndarray) -> tuple[np.ndarray, int]:
        """float32 ``[n, n_features]`` and the number of non-finite cells replaced by 0."""
        x, bad = clean(numeric)
        z = np.clip((signed_log1p(x) - self.mean) / self.std, -CLIP, CLIP)
        n = z.shape[0]
        width = self.n_features - z.shape[1]
        onehot = np.zeros((n, width), dtype=np.float32)
        start = 0
        for j, values in enumerate(self.vocab):
            col = categorical[:, j].astype(str)
            target = _lookup(values, col)
            present = np.flatnonzero(col != "")
            onehot[present, start + target[present]] = 1.0
            start += len(values) + 1
        return np.concatenate([z.astype(np.float32), onehot], axis=1), bad


def _lookup(values: tuple[str, ...], col: np.ndarray) -> np.ndarray:
    """Position of each value of ``col`` in the sorted ``values``; ``len(values)`` if unseen."""
    if not values:
        return np.zeros(col.shape[0], dtype=np.int64)
    vocab = np.asarray(values, dtype=str)
    pos = np.minimum(np.searchsorted(vocab, col), len(values) - 1)
    return np.where(vocab[pos] == col, pos, len(values)).astype(np.int64)
