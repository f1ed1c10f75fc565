"""A synthetic IoT traffic generator: per-device-type benign profiles and attack profiles.

This is **synthetic data** (``RawDataset.synthetic`` is True), made for offline defaults, tests
and quick experiments; numbers obtained on it say nothing about real networks. Each row is one
traffic window of one device, described by flow statistics (rates, sizes, durations, port and
destination counts, TLS share, TCP flag ratios, inter-arrival statistics, ...) plus two
categorical columns (dominant protocol and destination service).

Construction: every feature lives in a latent space (log for rates and sizes, logit for shares);
a row is ``device-type profile + device jitter + intensity x attack shift + noise``. Intensities
are drawn down to 0.15, so low-rate attacks overlap benign traffic, and device types receive
different attack mixes, so the data is non-IID across devices by construction.

Size: each device gets 300 to 2500 training rows (plus a quarter as many test rows). Beyond 80
devices that range shrinks in proportion so the training rows stay within
:data:`MAX_TRAIN_ROWS` (200,000), with at least :data:`MIN_DEVICE_ROWS` (50) per device;
``data.clients`` above :data:`MAX_DEVICES` (4000) is a
:class:`~fedledger.errors.ConfigError`. Up to 80 devices the data does not depend on the bound.
"""

from __future__ import annotations

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.types import RawDataset, Table
from fedledger.errors import ConfigError

__all__ = [
    "ATTACKS",
    "CLASSES",
    "DEVICE_TYPES",
    "MAX_DEVICES",
    "MAX_TRAIN_ROWS",
    "MIN_DEVICE_ROWS",
    "NUMERIC",
    "generate",
    "load_synthetic",
]

MAX_TRAIN_ROWS = 200_000
"""Bound on the training rows of one generated dataset (test rows add ``test_share`` more)."""
MIN_DEVICE_ROWS = 50
"""Fewest training rows a device gets when sizes are scaled down to :data:`MAX_TRAIN_ROWS`."""
MAX_DEVICES = MAX_TRAIN_ROWS // MIN_DEVICE_ROWS
"""Most devices ``data.name = synthetic`` accepts (4000)."""

# name, latent transform ("log" or "logit")
NUMERIC: tuple[tuple[str, str], ...] = (
    ("pkt_rate", "log"),
    ("bytes_per_pkt", "log"),
    ("bytes_per_pkt_std", "log"),
    ("flow_duration_s", "log"),
    ("flows_per_min", "log"),
    ("distinct_dst_ports", "log"),
    ("distinct_dst_ips", "log"),
    ("tls_share", "logit"),
    ("iat_mean_ms", "log"),
    ("iat_std_ms", "log"),
    ("syn_ratio", "logit"),
    ("rst_ratio", "logit"),
    ("failed_conn_ratio", "logit"),
    ("out_in_bytes_ratio", "log"),
    ("dns_per_min", "log"),
    ("payload_entropy", "logit"),
    ("login_attempts_per_min", "log"),
    ("upload_kb", "log"),
    ("ttl_mean", "log"),
)
PROTOCOLS = ("tcp", "udp", "icmp", "mqtt", "coap")
SERVICES = ("cloud_api", "http", "dns", "ntp", "ssh", "telnet", "unknown")
CLASSES = ("benign", "dos_flood", "port_scan", "brute_force", "botnet_c2", "data_exfiltration")
ATTACKS = CLASSES[1:]

# Benign profile per device type, in natural units, in NUMERIC order (entropy as share of 8 bits).
_BENIGN: dict[str, tuple[float, ...]] = {
    "camera": (180, 1100, 300, 40, 6, 3, 2, 0.9, 6, 4, 0.02, 0.01, 0.01, 12, 2, 0.9, 0.05, 900, 60),
    "thermostat": (
        2,
        180,
        40,
        3,
        2,
        2,
        2,
        0.8,
        500,
        300,
        0.1,
        0.02,
        0.02,
        1.5,
        1,
        0.7,
        0.05,
        2,
        64,
    ),
    "smart_plug": (1, 120, 20, 1, 3, 2, 1, 0.3, 900, 500, 0.15, 0.03, 0.03, 1, 2, 0.5, 0.05, 1, 64),
    "doorbell": (
        40,
        700,
        250,
        20,
        4,
        4,
        3,
        0.85,
        30,
        40,
        0.05,
        0.02,
        0.02,
        6,
        3,
        0.85,
        0.2,
        200,
        60,
    ),
    "hub": (25, 400, 200, 8, 20, 12, 8, 0.6, 40, 60, 0.08, 0.03, 0.04, 1.2, 8, 0.75, 0.1, 20, 62),
}
DEVICE_TYPES = tuple(_BENIGN)
# Attack shifts in latent units (log / logit), sparse by feature name.
_SHIFT: dict[str, dict[str, float]] = {
    "dos_flood": {
        "pkt_rate": 3.0,
        "bytes_per_pkt": -1.2,
        "iat_mean_ms": -3.0,
        "iat_std_ms": -2.5,
        "syn_ratio": 2.5,
        "flows_per_min": 2.0,
        "out_in_bytes_ratio": 1.5,
        "payload_entropy": -1.5,
    },
    "port_scan": {
        "distinct_dst_ports": 3.0,
        "syn_ratio": 2.0,
        "rst_ratio": 2.5,
        "failed_conn_ratio": 2.5,
        "flow_duration_s": -2.0,
        "bytes_per_pkt": -0.8,
        "flows_per_min": 1.5,
    },
    "brute_force": {
        "login_attempts_per_min": 3.5,
        "failed_conn_ratio": 2.0,
        "flows_per_min": 1.5,
        "tls_share": -1.5,
        "flow_duration_s": -0.8,
    },
    "botnet_c2": {
        "dns_per_min": 1.8,
        "distinct_dst_ips": 1.2,
        "iat_std_ms": -1.8,
        "tls_share": -1.0,
        "payload_entropy": 0.8,
        "ttl_mean": -0.3,
    },
    "data_exfiltration": {
        "upload_kb": 2.5,
        "out_in_bytes_ratio": 2.0,
        "flow_duration_s": 1.2,
        "payload_entropy": 1.2,
        "distinct_dst_ips": 0.6,
    },
}
# Attack mix per device type (probabilities over ATTACKS): different types see different attacks.
_MIX: dict[str, tuple[float, ...]] = {
    "camera": (0.35, 0.1, 0.05, 0.3, 0.2),
    "thermostat": (0.1, 0.35, 0.05, 0.5, 0),
    "smart_plug": (0.45, 0.2, 0, 0.35, 0),
    "doorbell": (0.1, 0.15, 0.4, 0.1, 0.25),
    "hub": (0.1, 0.35, 0.3, 0.15, 0.1),
}
_PROTO: dict[str, tuple[float, ...]] = {
    "camera": (0.55, 0.4, 0.0, 0.05, 0.0),
    "thermostat": (0.2, 0.1, 0.0, 0.6, 0.1),
    "smart_plug": (0.15, 0.15, 0.0, 0.3, 0.4),
    "doorbell": (0.6, 0.3, 0.0, 0.1, 0.0),
    "hub": (0.35, 0.3, 0.05, 0.2, 0.1),
    "dos_flood": (0.3, 0.45, 0.25, 0.0, 0.0),
    "port_scan": (0.85, 0.1, 0.05, 0.0, 0.0),
    "brute_force": (0.95, 0.05, 0.0, 0.0, 0.0),
    "botnet_c2": (0.5, 0.4, 0.0, 0.1, 0.0),
    "data_exfiltration": (0.8, 0.15, 0.0, 0.05, 0.0),
}
_SERVICE: dict[str, tuple[float, ...]] = {
    "camera": (0.6, 0.2, 0.1, 0.05, 0.0, 0.0, 0.05),
    "thermostat": (0.75, 0.0, 0.15, 0.1, 0.0, 0.0, 0.0),
    "smart_plug": (0.7, 0.0, 0.15, 0.1, 0.0, 0.0, 0.05),
    "doorbell": (0.55, 0.25, 0.1, 0.05, 0.0, 0.0, 0.05),
    "hub": (0.4, 0.2, 0.2, 0.1, 0.05, 0.0, 0.05),
    "dos_flood": (0.1, 0.3, 0.1, 0.0, 0.0, 0.0, 0.5),
    "port_scan": (0.0, 0.1, 0.0, 0.0, 0.2, 0.2, 0.5),
    "brute_force": (0.0, 0.1, 0.0, 0.0, 0.45, 0.45, 0.0),
    "botnet_c2": (0.2, 0.1, 0.3, 0.0, 0.0, 0.2, 0.2),
    "data_exfiltration": (0.4, 0.3, 0.1, 0.0, 0.0, 0.0, 0.2),
}
_NOISE = 0.5  # latent standard deviation of every feature
_JITTER = 0.2  # latent standard deviation of one device's offset from its type profile


def _latent(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for j, (_, kind) in enumerate(NUMERIC):
        v = values[..., j]
        out[..., j] = np.log(v / (1.0 - v)) if kind == "logit" else np.log(v)
    return out


def _natural(latent: np.ndarray) -> np.ndarray:
    out = np.empty_like(latent)
    for j, (_, kind) in enumerate(NUMERIC):
        v = latent[..., j]
        out[..., j] = 1.0 / (1.0 + np.exp(-v)) if kind == "logit" else np.exp(v)
    return out


_ENTROPY = [n for n, _ in NUMERIC].index("payload_entropy")
_PROTOCOL_NAMES = np.array(PROTOCOLS)
_SERVICE_NAMES = np.array(SERVICES)
_BASE = _latent(np.array([_BENIGN[t] for t in DEVICE_TYPES], dtype=np.float64))
_SHIFTS = np.zeros((len(CLASSES), len(NUMERIC)))
for _a, _shift in _SHIFT.items():
    for _name, _delta in _shift.items():
        _SHIFTS[CLASSES.index(_a), [n for n, _ in NUMERIC].index(_name)] = _delta


def _device_rows(
    rng: np.random.Generator, dtype: str, offset: np.ndarray, n: int, attack_share: float
) -> Table:
    t = DEVICE_TYPES.index(dtype)
    n_attack = round(n * attack_share)
    labels = np.zeros(n, dtype=np.int64)
    labels[:n_attack] = 1 + rng.choice(len(ATTACKS), size=n_attack, p=np.array(_MIX[dtype]))
    labels = rng.permutation(labels)
    intensity = np.where(labels > 0, rng.uniform(0.15, 1.3, size=n), 0.0)
    latent = (
        _BASE[t]
        + offset
        + intensity[:, None] * _SHIFTS[labels]
        + rng.normal(0.0, _NOISE, size=(n, len(NUMERIC)))
    )
    numeric = _natural(latent)
    numeric[:, _ENTROPY] *= 8.0
    proto = np.empty(n, dtype=object)
    service = np.empty(n, dtype=object)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        key = dtype if k == 0 else CLASSES[k]
        # attacks keep some of the device's normal protocol mix, so categories are not a giveaway
        mixed = rng.random(rows.size) < (0.35 if k else 0.0)
        pp = np.where(mixed[:, None], _PROTO[dtype], _PROTO[key])
        ps = np.where(mixed[:, None], _SERVICE[dtype], _SERVICE[key])
        proto[rows] = _PROTOCOL_NAMES[_pick(rng, pp)]
        service[rows] = _SERVICE_NAMES[_pick(rng, ps)]
    categorical = np.stack([proto, service], axis=1).astype(str)
    return Table(numeric=numeric, categorical=categorical, labels=labels)


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row from row-wise probabilities (vectorised inverse CDF)."""
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(int(probs.shape[0]))[:, None]
    picked: np.ndarray = np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)
    return picked


def _stack(parts: list[Table], names: list[str]) -> Table:
    groups = np.concatenate([np.full(len(p), n) for p, n in zip(parts, names, strict=True)])
    return Table(
        numeric=np.concatenate([p.numeric for p in parts]),
        categorical=np.concatenate([p.categorical for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        groups=groups.astype(str),
    )


def _bounded(n_devices: int, min_rows: int, max_rows: int, max_total: int) -> tuple[int, int]:
    """``(min_rows, max_rows)``, scaled down when ``n_devices * max_rows`` exceeds ``max_total``.

    The new maximum is ``max_total // n_devices`` (never below :data:`MIN_DEVICE_ROWS`) and the
    minimum keeps its ratio to the maximum, so the total stays within ``max_total`` for up to
    ``max_total // MIN_DEVICE_ROWS`` devices. Sizes that already fit are returned unchanged.
    """
    if n_devices * max_rows <= max_total:
        return min_rows, max_rows
    high = min(max_rows, max(MIN_DEVICE_ROWS, max_total // n_devices))
    low = min(high, max(MIN_DEVICE_ROWS, min_rows * high // max_rows))
    return low, high


def generate(
    n_devices: int,
    seed: int,
    *,
    min_rows: int = 300,
    max_rows: int = 2500,
    test_share: float = 0.25,
    max_total: int = MAX_TRAIN_ROWS,
) -> RawDataset:
    """Generate ``n_devices`` devices' traffic windows and a test split from the same devices.

    Parameters
    ----------
    n_devices
        Number of devices; device types are dealt round-robin in a seeded order.
    seed
        Seed of the numpy Generator; the same seed gives the same dataset.
    min_rows, max_rows
        Range of training rows per device.
    test_share
        Test rows per device, as a share of its training rows.
    max_total
        Bound on the training rows: when ``n_devices * max_rows`` exceeds it, both ends of the
        range shrink in proportion so that it holds (each device keeps at least
        :data:`MIN_DEVICE_ROWS` rows, so beyond ``max_total // MIN_DEVICE_ROWS`` devices the
        floor wins). Up to 80 devices the defaults fit, and the data is what it always was.
    """
    min_rows, max_rows = _bounded(n_devices, min_rows, max_rows, max_total)
    rng = np.random.default_rng(seed)
    types = [DEVICE_TYPES[i % len(DEVICE_TYPES)] for i in range(n_devices)]
    types = [types[i] for i in rng.permutation(n_devices)]
    width = max(3, len(str(n_devices - 1)))
    names = [f"device-{i:0{width}d}" for i in range(n_devices)]
    train: list[Table] = []
    test: list[Table] = []
    for dtype in types:
        offset = rng.normal(0.0, _JITTER, size=len(NUMERIC))
        share = float(rng.uniform(0.15, 0.45))
        n = int(rng.integers(min_rows, max_rows + 1))
        train.append(_device_rows(rng, dtype, offset, n, share))
        test.append(_device_rows(rng, dtype, offset, max(1, int(n * test_share)), share))
    return RawDataset(
        name="synthetic",
        kind="tabular",
        classes=CLASSES,
        train=_stack(train, names),
        test=_stack(test, names),
        numeric_names=tuple(n for n, _ in NUMERIC),
        categorical_names=("protocol", "dst_service"),
        benign_class=0,
        synthetic=True,
        group_clusters=dict(zip(names, types, strict=True)),
    )


def load_synthetic(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """``cfg.clients`` synthetic IoT devices (see :func:`generate`), seeded by ``seed``.

    Raises
    ------
    ConfigError
        ``cfg.clients`` is above :data:`MAX_DEVICES`.
    """
    if cfg.clients > MAX_DEVICES:
        raise ConfigError(
            "data.clients",
            f"the synthetic dataset simulates at most {MAX_DEVICES} devices, got {cfg.clients}",
        )
    return generate(cfg.clients, seed)
