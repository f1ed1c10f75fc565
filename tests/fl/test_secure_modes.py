"""Secure-aggregation modes end to end: devices protect, the aggregator aggregates."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import fedledger
from fedledger.config import load_config
from fedledger.errors import AttestationError, SecureAggregationError
from fedledger.fl.enclave.process import EnclaveProcess
from fedledger.fl.secure import SecureAggregator, SecureContext, SecureOutcome, Submission
from fedledger.fl.secure.ckks_mode import CkksMode
from fedledger.fl.secure.enclave_mode import EnclaveMode
from fedledger.fl.secure.secagg_mode import SecAggMode
from fedledger.security.enclave.backend import AggregateReply, EnclaveBackend
from fedledger.security.enclave.sealing import EnclaveKey
from fedledger.strategies import create_strategy

P = 40


def context(mode: str, *overrides: str, sizes: tuple[int, ...] = (30, 10)) -> SecureContext:
    cfg = load_config(None, [f"security.secure_aggregation={mode}", *overrides])
    return SecureContext(
        seed=0,
        names=tuple(f"p{i}" for i in range(len(sizes))),
        sizes=sizes,
        security=cfg.security,
        strategy=cfg.strategy,
        max_weight=100,
    )


def updates(k: int = 6, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.05, size=(k, P)).astype(np.float32), [
        int(n) for n in rng.integers(5, 100, k)
    ]


def protected_round(
    mode: SecureAggregator, x: np.ndarray, n: list[int], r: int = 1, strategy: str = "fedavg"
) -> SecureOutcome:
    devices = list(range(len(n)))
    mode.begin_round(r, devices, n)
    subs = [Submission(d, p, n[d]) for d in devices if (p := mode.protect(r, d, x[d])) is not None]
    base = torch.zeros(P)
    return mode.aggregate(
        r, base, create_strategy(mode.ctx.strategy.model_copy(update={"name": strategy})), subs
    )


def plain(x: np.ndarray, n: Sequence[int], strategy: str = "fedavg") -> torch.Tensor:
    cfg = load_config(None, [f"strategy.name={strategy}"]).strategy
    return create_strategy(cfg).aggregate(
        torch.zeros(P), torch.from_numpy(x), torch.tensor([float(w) for w in n])
    )


@pytest.fixture(scope="module")
def enclave() -> Iterator[EnclaveMode]:
    mode = EnclaveMode(context("enclave", "strategy.name=fedavg"))
    yield mode
    mode.close()


# ---- enclave -------------------------------------------------------------------------------
def test_the_enclave_releases_exactly_what_the_strategy_computes(enclave: EnclaveMode) -> None:
    x, n = updates()
    out = protected_round(enclave, x, n)
    assert torch.equal(out.params, plain(x, n))
    assert out.accepted == list(range(6)) and out.rejected == {}
    assert {"transcript", "signature"} <= set(out.evidence)


def test_a_sealed_update_cannot_be_opened_outside_the_enclave(enclave: EnclaveMode) -> None:
    x, n = updates()
    enclave.begin_round(2, [0], [n[0]])
    sealed = enclave.protect(2, 0, x[0])
    assert sealed is not None and x[0].tobytes() not in sealed
    from fedledger.errors import EnvelopeError

    with pytest.raises(EnvelopeError, match="not sealed to this enclave"):
        EnclaveKey().open(sealed)  # any key the host could make


def test_the_enclave_screens_updates_it_cannot_use(enclave: EnclaveMode) -> None:
    x, n = updates(4)
    enclave.begin_round(3, [0, 1, 2, 3], n)
    x[1, 5] = np.nan
    subs = [Submission(d, enclave.protect(3, d, x[d]) or b"", n[d]) for d in range(4)]
    subs[2] = Submission(2, bytes(len(subs[2].payload)), n[2])  # not a sealed box
    out = enclave.aggregate(3, torch.zeros(P), create_strategy(enclave.ctx.strategy), subs)
    assert out.rejected == {1: "non-finite", 2: "unsealable"}
    assert torch.equal(out.params, plain(x[[0, 3]], [n[0], n[3]]))


def test_a_robust_strategy_in_the_enclave_sees_each_update(enclave: EnclaveMode) -> None:
    """Flower's SecAgg+ hands the strategy copies of the one aggregate, so a median of them
    is the mean. Inside the enclave the median is over the individual updates."""
    x, n = updates(5)
    x[4] += 10.0  # one poisoned update
    mode = EnclaveMode(context("enclave", "strategy.name=median"))
    try:
        out = protected_round(mode, x, n, strategy="median")
    finally:
        mode.close()
    want = torch.from_numpy(np.median(x, axis=0))
    assert torch.allclose(out.params, want, atol=1e-7)
    copies = np.repeat(plain(x, n).numpy()[None], 5, axis=0)  # an aggregate-copy design
    assert not torch.allclose(torch.from_numpy(np.median(copies, axis=0)), want, atol=1e-3)
    assert float(out.params.abs().max()) < 1.0  # the poisoned row did not get through


def test_devices_refuse_an_enclave_running_changed_code(tmp_path: Path) -> None:
    package = Path(fedledger.__file__).parent
    copy = tmp_path / "fedledger"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "strategies" / "fedavg.py").open("a") as f:
        f.write("\n# a patched aggregation\n")
    ctx = context("enclave")
    probe = EnclaveMode(ctx)  # computes the approved config the same way
    patched = EnclaveProcess(probe.config, ctx.seed, env={"PYTHONPATH": str(tmp_path)})
    probe.close()
    assert patched.measurement != probe.approved
    mode = EnclaveMode(ctx, backend=patched)
    try:
        with pytest.raises(AttestationError, match=r"device 0 refuses the enclave.*not registered"):
            mode.begin_round(1, [0, 1], [10, 10])
            mode.protect(1, 0, np.zeros(P, dtype=np.float32))
    finally:
        mode.close()


class _Wrapped:
    """An enclave backend whose answers a test alters."""

    def __init__(self, inner: EnclaveBackend, **changes: Any) -> None:
        self.inner, self.changes = inner, changes
        self.old: list[bytes] = []

    @property
    def measurement(self) -> bytes:
        return self.inner.measurement

    def attest(self, nonces: Sequence[bytes]) -> list[bytes]:
        if self.changes.get("replay") and self.old:
            return self.old[: len(nonces)]
        quotes = self.inner.attest(nonces)
        self.old = quotes
        return quotes

    def public_material(self) -> bytes:
        return self.inner.public_material()

    def aggregate(self, *args: Any) -> AggregateReply:
        reply = self.inner.aggregate(*args)
        if self.changes.get("release"):
            params = bytearray(reply.params)
            params[0] ^= 1
            reply = replace(reply, params=bytes(params))
        return reply

    def decrypt_sum(self, *args: Any) -> Any:
        return self.inner.decrypt_sum(*args)

    def close(self) -> None:
        self.inner.close()


def test_a_replayed_quote_or_a_foreign_platform_is_refused() -> None:
    ctx = context("enclave")
    probe = EnclaveMode(ctx)
    wrapped = _Wrapped(probe.backend, replay=True)
    mode = EnclaveMode(ctx, backend=wrapped)
    mode.begin_round(1, [0, 1], [10, 10])  # fresh quotes
    mode.device_quote(0)
    with pytest.raises(AttestationError, match=r"device 0 refuses.*replayed"):
        mode.begin_round(2, [0, 1], [10, 10])  # the enclave answers with last round's quotes
        mode.device_quote(0)
    mode.close()
    foreign = EnclaveProcess(probe.config, platform_seed=1)  # another platform key signs
    mode = EnclaveMode(ctx, backend=foreign)
    with pytest.raises(AttestationError, match="signature does not verify"):
        mode.begin_round(1, [0, 1], [10, 10])
        mode.device_quote(1)
    mode.close()


def test_an_altered_release_is_refused() -> None:
    ctx = context("enclave")
    mode = EnclaveMode(ctx)
    mode.backend = _Wrapped(mode.backend, release=True)
    x, n = updates()
    try:
        with pytest.raises(AttestationError, match="transcript does not match"):
            protected_round(mode, x, n)
    finally:
        mode.close()


# ---- secagg+ -------------------------------------------------------------------------------
def test_secagg_reveals_the_weighted_mean_up_to_fixed_point_rounding() -> None:
    mode = SecAggMode(context("secagg+"))
    x, n = updates(8)
    out = protected_round(mode, x, n)
    step = 2 * mode.ctx.security.secagg_clip / (2**mode.ctx.security.secagg_bits - 1)
    # each scaled update is rounded by at most step/2; the mean divides by sum(n)/max_weight
    bound = 8 * (step / 2) / (sum(n) / mode.ctx.max_weight)
    assert float((out.params - plain(x, n)).abs().max()) <= bound + 1e-7
    assert out.evidence["survivors"] == 8 and out.evidence["dropped"] == 0


def test_secagg_recovers_from_dropouts_and_fails_clearly_beyond_the_threshold() -> None:
    mode = SecAggMode(context("secagg+", "security.secagg_dropout=0.2"))
    x, n = updates(10)
    out = protected_round(mode, x, n)
    assert out.evidence["dropped"] == 2 and len(out.accepted) == 8
    kept = [i for i in range(10) if i not in mode.dropped]
    assert torch.allclose(out.params, plain(x[kept], [n[i] for i in kept]), atol=1e-3)
    too_many = SecAggMode(context("secagg+", "security.secagg_dropout=0.8"))
    with pytest.raises(SecureAggregationError, match="shares"):
        protected_round(too_many, x, n)


def test_secagg_refuses_a_payload_from_outside_the_round() -> None:
    mode = SecAggMode(context("secagg+"))
    x, n = updates(4)
    mode.begin_round(1, [0, 1, 2, 3], n)
    subs = [Submission(d, mode.protect(1, d, x[d]) or b"", n[d]) for d in range(4)]
    subs.append(Submission(-1, subs[0].payload, 10))
    out = mode.aggregate(1, torch.zeros(P), create_strategy(mode.ctx.strategy), subs)
    assert out.rejected == {4: "not-in-round"} and out.accepted == [0, 1, 2, 3]


# ---- ckks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [[], ["p1"]])
def test_ckks_decrypts_only_the_sum(layers: list[str]) -> None:
    spec = "[" + ",".join(f'"{name}"' for name in layers) + "]"
    mode = CkksMode(context("ckks", f"security.ckks_layers={spec}"))
    try:
        x, n = updates(5)
        out = protected_round(mode, x, n)
        assert torch.allclose(out.params, plain(x, n), atol=1e-6)
        assert mode.n_secret == (P if not layers else 10)
        one = protected_round(mode, x[:1], n[:1])  # a sum of one update is that update
        assert one.rejected == {0: "too-few-to-sum"} and torch.equal(one.params, torch.zeros(P))
        with pytest.raises(SecureAggregationError, match="single device"):
            mode.backend.decrypt_sum(1, b"", 10, [(bytes(32), 5)])
    finally:
        mode.close()


def test_a_speculative_aggregate_is_used_only_for_the_same_inputs(enclave: EnclaveMode) -> None:
    x, n = updates(4)
    enclave.begin_round(5, [0, 1, 2, 3], n)
    subs = [Submission(d, enclave.protect(5, d, x[d]) or b"", n[d]) for d in range(4)]
    strategy = create_strategy(enclave.ctx.strategy)
    enclave.speculate(5, torch.zeros(P), strategy, subs)
    assert enclave.speculated(subs[:3]) is None  # a gateway refused one: aggregate again
    enclave.speculate(5, torch.zeros(P), strategy, subs)
    ahead = enclave.speculated(subs)
    assert ahead is not None and torch.equal(ahead.params, plain(x, n))
