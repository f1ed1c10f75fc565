"""Seeded partitioners: which training rows each simulated device owns.

Every function returns one sorted int64 index array per client; together they cover every row
exactly once, and none is empty (a :class:`~fedledger.errors.DataError` says so otherwise).

- ``iid``: a uniform random split into near-equal parts.
- ``dirichlet``: label skew, per class proportions drawn from Dirichlet(alpha) (Hsu, Qi and Brown,
  "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
  Classification", 2019), redrawn until every client has ``min_size`` rows (by default a few
  rows, relaxed to one when that is out of reach, e.g. at very small alpha).
- ``column``: one client per distinct natural device key, in sorted key order.
- ``quantity``: quantity skew, client sizes from Dirichlet(alpha), labels iid (Li et al.,
  "Federated Learning on Non-IID Data Silos: An Experimental Study", ICDE 2022).
- ``shards``: sort by label, cut into ``clients x shards_per_client`` shards, deal
  ``shards_per_client`` to each client (McMahan et al., "Communication-Efficient Learning of
  Deep Networks from Decentralized Data", AISTATS 2017).
"""

from __future__ import annotations

import numpy as np

from fedledger.errors import DataError

__all__ = [
    "MAX_TRIES",
    "SMALL_ALPHA",
    "check_partition",
    "partition_column",
    "partition_dirichlet",
    "partition_iid",
    "partition_quantity",
    "partition_shards",
]

MAX_TRIES = 1000
"""Dirichlet redraws before giving up."""
SMALL_ALPHA = 0.1
"""Below this Dirichlet alpha the default minimum client size is 1 row."""


def _need_rows(n_rows: int, n_clients: int, what: str) -> None:
    if n_clients < 1:
        raise DataError(f"{what} partition needs at least 1 client, got {n_clients}")
    if n_rows < n_clients:
        raise DataError(
            f"{what} partition: {n_clients} clients but only {n_rows} training rows; "
            "lower data.clients"
        )


def check_partition(parts: list[np.ndarray], n_rows: int) -> list[np.ndarray]:
    """Check ``parts`` is a partition of ``range(n_rows)`` into non-empty clients.

    Raises
    ------
    DataError
        A client is empty, or a row is missing or assigned twice.
    """
    sizes = [int(p.size) for p in parts]
    if not parts or min(sizes) == 0:
        empty = sizes.index(0) if parts else 0
        raise DataError(f"empty partition: client {empty} of {len(parts)} has no rows")
    allrows = np.sort(np.concatenate(parts))
    if allrows.size != n_rows or not np.array_equal(allrows, np.arange(n_rows)):
        raise DataError("partition does not assign every row exactly once")
    return parts


def _split_sorted(order: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    cuts = np.cumsum(sizes)[:-1]
    return [np.sort(p).astype(np.int64) for p in np.split(order, cuts)]


def partition_iid(n_rows: int, n_clients: int, seed: int) -> list[np.ndarray]:
    """Uniform random split into ``n_clients`` parts whose sizes differ by at most one."""
    _need_rows(n_rows, n_clients, "iid")
    order = np.random.default_rng(seed).permutation(n_rows)
    return check_partition(
        [np.sort(p).astype(np.int64) for p in np.array_split(order, n_clients)], n_rows
    )


def partition_dirichlet(
    labels: np.ndarray, n_clients: int, alpha: float, seed: int, min_size: int | None = None
) -> list[np.ndarray]:
    """Label-skewed split: each class is divided among clients by Dirichlet(alpha) proportions.

    Parameters
    ----------
    labels
        int class index per row.
    min_size
        Smallest acceptable client, enforced strictly (every draw must give each client that
        many rows). By default the split aims for ``min(10, n_rows // (4 * n_clients))`` rows
        per client (1 when ``alpha < 0.1``, where most clients get few classes) and, when no
        draw in :data:`MAX_TRIES` reaches that, settles for the first draw in which every
        client has at least one row.

    Raises
    ------
    DataError
        Fewer rows than clients, or no draw in :data:`MAX_TRIES` gives every client ``min_size``
        rows (by default: at least one row).
    """
    n_rows = int(labels.shape[0])
    _need_rows(n_rows, n_clients, "dirichlet")
    if min_size is not None:
        floor = max(1, min_size)
    elif alpha < SMALL_ALPHA:
        floor = 1
    else:
        floor = max(1, min(10, n_rows // (4 * n_clients)))
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    client = np.empty(n_rows, dtype=np.int64)
    fallback: np.ndarray | None = None
    for _ in range(MAX_TRIES):
        for ids in classes:
            ids = rng.permutation(ids)
            p = rng.dirichlet(alpha * np.ones(n_clients))
            cuts = (np.cumsum(p) * len(ids)).astype(np.int64)[:-1]
            for c, part in enumerate(np.split(ids, cuts)):
                client[part] = c
        smallest = int(np.bincount(client, minlength=n_clients).min())
        if smallest >= floor:
            return _by_client(client, n_clients)
        if min_size is None and fallback is None and smallest >= 1:
            fallback = client.copy()
    if fallback is not None:
        return _by_client(fallback, n_clients)
    least = floor if min_size is not None else 1
    raise DataError(
        f"dirichlet partition: no draw in {MAX_TRIES} gave all {n_clients} clients >= {least} "
        f"rows (alpha={alpha}); raise data.alpha or lower data.clients"
    )


def _by_client(client: np.ndarray, n_clients: int) -> list[np.ndarray]:
    sizes = np.bincount(client, minlength=n_clients)
    return check_partition(_split_sorted(np.argsort(client, kind="stable"), sizes), len(client))


def partition_column(groups: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """One client per distinct group value, in sorted value order, rows in original order.

    Returns
    -------
    parts, names
        The index arrays and the group value of each, as text.
    """
    values, inverse = np.unique(groups, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    parts = _split_sorted(order, np.bincount(inverse, minlength=len(values)))
    return check_partition(parts, int(groups.shape[0])), [str(v) for v in values]


def partition_quantity(n_rows: int, n_clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Quantity skew: sizes ``1 + Multinomial(n - clients, Dirichlet(alpha))``, rows iid."""
    _need_rows(n_rows, n_clients, "quantity")
    rng = np.random.default_rng(seed)
    share = rng.dirichlet(alpha * np.ones(n_clients))
    sizes = 1 + rng.multinomial(n_rows - n_clients, share)
    return check_partition(_split_sorted(rng.permutation(n_rows), sizes), n_rows)


def partition_shards(
    labels: np.ndarray, n_clients: int, shards_per_client: int, seed: int
) -> list[np.ndarray]:
    """Pathological label skew: each client gets ``shards_per_client`` label-sorted shards."""
    n_rows = int(labels.shape[0])
    n_shards = n_clients * shards_per_client
    _need_rows(n_rows, n_shards, "shards")
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n_rows)
    order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    shards = np.array_split(order, n_shards)
    deal = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
    parts = [np.sort(np.concatenate([shards[s] for s in row])).astype(np.int64) for row in deal]
    return check_partition(parts, n_rows)
