"""SecAgg+ rounds: exact sums, dropout recovery, too many dropouts, masked inputs look uniform."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg import (
    Device,
    DropStage,
    SecAggConfig,
    Server,
    UnmaskRequest,
    UnmaskShares,
    simulate_round,
)

_STAGES: list[DropStage] = ["advertise", "share", "mask", "unmask"]


def _inputs(n: int, dim: int, seed: int) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)  # test data only, nothing cryptographic
    return [rng.normal(0.0, 0.6, dim).astype(np.float32) for _ in range(n)]


def _plain(
    config: SecAggConfig, xs: list[npt.NDArray[np.float32]], survivors: tuple[int, ...]
) -> npt.NDArray[np.uint64]:
    total = np.zeros(config.dim, dtype=np.uint64)
    for i in survivors:
        total += config.codec.encode(xs[i]).values
    return total & config.codec.mask


def _survivors(n: int, drops: Mapping[int, DropStage]) -> tuple[int, ...]:
    return tuple(i for i in range(n) if drops.get(i) in (None, "unmask"))


def test_no_dropouts_exact_sum() -> None:
    config = SecAggConfig(n=12, k=6, threshold=4, clip=1.0, dim=300)
    xs = _inputs(12, 300, 0)
    result = simulate_round(config, xs, seed=b"round")
    assert result.survivors == tuple(range(12)) and result.dropped == ()
    assert np.array_equal(result.ring_sum, _plain(config, xs, result.survivors))
    quantised = np.sum([config.codec.quantise(x) for x in xs], axis=0)
    np.testing.assert_allclose(result.total, quantised, rtol=0, atol=1e-9)


def test_dropouts_at_every_stage_are_recovered() -> None:
    config = SecAggConfig(n=16, k=8, threshold=3, clip=1.0, dim=200, modulus_bits=40, round=7)
    xs = _inputs(16, 200, 1)
    drops: dict[int, DropStage] = {0: "advertise", 5: "share", 9: "mask", 12: "mask", 15: "unmask"}
    result = simulate_round(config, xs, drop_before=drops, seed=b"d")
    assert result.survivors == _survivors(16, drops)
    assert result.dropped == (9, 12)
    assert np.array_equal(result.ring_sum, _plain(config, xs, result.survivors))


def test_unseeded_round_is_also_exact() -> None:
    config = SecAggConfig(n=6, k=4, threshold=2, clip=0.5, dim=64)
    xs = _inputs(6, 64, 2)
    result = simulate_round(config, xs, drop_before={3: "mask"})
    assert np.array_equal(result.ring_sum, _plain(config, xs, result.survivors))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 14), data=st.data())
def test_exact_with_dropouts_within_threshold(n: int, data: st.DataObject) -> None:
    k = data.draw(st.sampled_from([k for k in range(2, n, 2)] + [n - 1]))
    t = data.draw(st.integers(1, k))
    # Drop at most k - t devices in all, so every secret keeps >= t live share holders.
    budget = k - t
    dropped = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(budget, n - 1)))
    drops = {i: data.draw(st.sampled_from(_STAGES)) for i in dropped}
    config = SecAggConfig(
        n=n, k=k, threshold=t, clip=1.0, dim=17, modulus_bits=data.draw(st.sampled_from([32, 64]))
    )
    xs = _inputs(n, 17, data.draw(st.integers(0, 1000)))
    result = simulate_round(config, xs, drop_before=drops, seed=bytes([n, k, t]))
    assert result.survivors == _survivors(n, drops)
    assert np.array_equal(result.ring_sum, _plain(config, xs, result.survivors))


def test_too_many_dropouts_name_the_device_and_counts() -> None:
    config = SecAggConfig(n=10, k=4, threshold=4, clip=1.0, dim=8)
    graph = config.graph()
    victim = 0
    near = graph.neighbours(victim)
    # One neighbour of the victim skips round 3: its b-share is missing (3 of 4).
    drops: dict[int, DropStage] = {near[0]: "unmask"}
    with pytest.raises(SecureAggregationError) as info:
        simulate_round(config, _inputs(10, 8, 3), drop_before=drops, seed=b"x")
    message = str(info.value)
    assert "3 shares of its self-mask seed available, 4 needed" in message
    assert message.startswith("device ")
    assert "\n" not in message


def test_too_few_shares_of_a_dropped_mask_key() -> None:
    config = SecAggConfig(n=10, k=4, threshold=3, clip=1.0, dim=8)
    graph = config.graph()
    devices = [Device(i, config, seed=bytes([i + 1]) * 32, graph=graph) for i in range(10)]
    server = Server(config, graph=graph)
    directory = server.collect_keys(d.advertise() for d in devices)
    inboxes = server.route_shares(d.share_keys(directory) for d in devices)
    victim = 0
    xs = _inputs(10, 8, 4)
    request = server.collect_masked(
        d.mask_input(xs[d.index], inboxes[d.index]) for d in devices if d.index != victim
    )
    assert request.dropped == frozenset({victim})
    withholding = set(graph.neighbours(victim)[:2])  # answer round 3 without the s-shares
    responses = []
    for d in devices[1:]:
        msg = d.unmask(request)
        if d.index in withholding:
            msg = UnmaskShares(msg.sender, msg.self_mask, {})
        responses.append(msg)
    with pytest.raises(
        SecureAggregationError, match=r"^device 0: 2 shares of its mask key available, 3 needed$"
    ):
        server.unmask(responses)


def test_device_refuses_round_with_too_few_neighbours() -> None:
    config = SecAggConfig(n=6, k=4, threshold=4, clip=1.0, dim=4)
    with pytest.raises(SecureAggregationError, match="neighbours advertised keys, 4 needed"):
        simulate_round(config, _inputs(6, 4, 5), drop_before={0: "advertise"}, seed=b"x")


def test_device_never_reveals_both_secrets_of_one_peer() -> None:
    config = SecAggConfig(n=4, k=3, threshold=2, clip=1.0, dim=4)
    device = Device(0, config, seed=b"\x01" * 32)
    with pytest.raises(SecureAggregationError, match="both survive and drop"):
        device.unmask(UnmaskRequest(frozenset({1}), frozenset({1})))


def test_tampered_share_box_is_rejected() -> None:
    config = SecAggConfig(n=4, k=3, threshold=2, clip=1.0, dim=4)
    devices = [Device(i, config, seed=bytes([i]) * 32) for i in range(4)]
    server = Server(config)
    directory = server.collect_keys(d.advertise() for d in devices)
    inboxes = server.route_shares(d.share_keys(directory) for d in devices)
    box = bytearray(inboxes[0][1])
    box[0] ^= 1
    with pytest.raises(SecureAggregationError, match="fail authentication"):
        devices[0].mask_input(np.zeros(4), {**inboxes[0], 1: bytes(box)})


def _chi_square_bytes(values: npt.NDArray[np.uint64]) -> float:
    counts = np.bincount(values.astype("<u4").view(np.uint8), minlength=256)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def test_masked_input_looks_uniform_but_the_encoding_does_not() -> None:
    # 255 degrees of freedom: mean 255, sd ~22.6; 400 is > 6 sd, so a fixed seed cannot flake.
    dim = 40_000
    config = SecAggConfig(n=8, k=4, threshold=3, clip=1.0, dim=dim)
    rng = np.random.default_rng(11)
    xs = [rng.normal(0.0, 0.05, dim).astype(np.float32) for _ in range(8)]
    devices = [Device(i, config, seed=bytes([i + 1]) * 32) for i in range(8)]
    server = Server(config)
    directory = server.collect_keys(d.advertise() for d in devices)
    inboxes = server.route_shares(d.share_keys(directory) for d in devices)
    masked = devices[3].mask_input(xs[3], inboxes[3]).masked
    assert _chi_square_bytes(masked) < 400
    high = (masked >> np.uint64(24)).astype(np.int64)  # top byte of each 32-bit element
    high_counts = np.bincount(high, minlength=256)
    assert float(((high_counts - dim / 256) ** 2 / (dim / 256)).sum()) < 400
    plain = config.codec.encode(xs[3]).values
    assert _chi_square_bytes(plain) > 10_000


def test_a_low_order_public_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from fedledger.security.secagg.keys import mask_seed

    with pytest.raises(SecureAggregationError, match="low-order point"):
        mask_seed(X25519PrivateKey.generate(), bytes(32), 1, 0, 1)
