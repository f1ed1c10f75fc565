"""The gateway refuses every kind of bad envelope, naming the reason (no chain needed)."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.fl.gateway import Gateway, KeyStatus
from fedledger.security.envelope import seal_envelope
from fedledger.security.identity import derive_identity
from fedledger.security.merkle import verify_inclusion
from fedledger.security.payload import PLAIN_F32, encode_f32

P = 8
ALICE = derive_identity(0, "device", "alice")
BOB = derive_identity(0, "device", "bob")
MALLORY = derive_identity(0, "device", "mallory")  # never registered
REGISTRY = {
    ALICE.id: KeyStatus(ALICE.public_key, True),
    BOB.id: KeyStatus(BOB.public_key, True),
}


def env(ident=ALICE, r: int = 1, nonce: bytes = b"n" * 16, update=None):  # type: ignore[no-untyped-def]
    update = np.arange(P, dtype=np.float32) if update is None else update
    return seal_envelope(ident, r, 10, PLAIN_F32, encode_f32(update), nonce)


def reasons(gw: Gateway, r: int, raws: list[bytes], registry=REGISTRY) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return gw.collect(r, raws, registry).reasons()


def test_good_envelopes_are_accepted_and_provably_included() -> None:
    gw = Gateway(0, P, 1 << 20)
    batch = gw.collect(1, [env().encode(), env(BOB).encode()], REGISTRY)
    assert not batch.rejected and len(batch.accepted) == 2
    assert batch.tree is not None
    for i, e in enumerate(batch.accepted):
        assert verify_inclusion(e.digest(), i, 2, batch.tree.proof(i), batch.root)
    assert np.array_equal(batch.updates[0], np.arange(P, dtype=np.float32))


def test_forged_signature_is_refused() -> None:
    forged = env(MALLORY)  # signed by Mallory's key, claiming Alice's id
    from dataclasses import replace

    header = replace(forged.header, device_id=ALICE.id)
    raw = type(forged)(header, forged.signature, forged.payload).encode()
    assert reasons(Gateway(0, P, 1 << 20), 1, [raw]) == {"bad-signature": 1}


def test_envelope_replayed_from_another_round_is_refused() -> None:
    gw = Gateway(0, P, 1 << 20)
    old = env(r=1).encode()
    assert reasons(gw, 1, [old]) == {}
    assert reasons(gw, 2, [old]) == {"wrong-round": 1}


def test_second_envelope_in_a_round_and_reused_nonce_are_refused() -> None:
    gw = Gateway(0, P, 1 << 20)
    first, second = env(nonce=b"a" * 16), env(nonce=b"b" * 16)
    assert reasons(gw, 1, [first.encode(), second.encode()]) == {"duplicate": 1}
    assert reasons(gw, 2, [env(r=2, nonce=b"a" * 16).encode()]) == {"replayed-nonce": 1}


def test_unregistered_and_revoked_devices_are_refused() -> None:
    revoked = {**REGISTRY, BOB.id: KeyStatus(BOB.public_key, False)}
    gw = Gateway(0, P, 1 << 20)
    raws = [env(MALLORY).encode(), env(BOB).encode()]
    assert reasons(gw, 1, raws, revoked) == {"revoked": 1, "unregistered": 1}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_updates_are_refused(bad: float) -> None:
    update = np.zeros(P, dtype=np.float32)
    update[3] = bad
    assert reasons(Gateway(0, P, 1 << 20), 1, [env(update=update).encode()]) == {"non-finite": 1}


def test_oversize_wrong_size_and_garbage_are_refused() -> None:
    big = env(update=np.zeros(64, dtype=np.float32)).encode()
    assert reasons(Gateway(0, P, 100), 1, [big]) == {"oversize": 1}
    assert reasons(Gateway(0, P, 1 << 20), 1, [big]) == {"malformed": 1}  # 64 values, not 8
    assert reasons(Gateway(0, P, 1 << 20), 1, [b"FLEV\x01garbage"]) == {"malformed": 1}


def test_a_device_of_another_cluster_is_refused() -> None:
    """One envelope cannot be counted by two gateways."""
    elsewhere = {**REGISTRY, ALICE.id: KeyStatus(ALICE.public_key, True, gateway=1)}
    assert reasons(Gateway(0, P, 1 << 20), 1, [env().encode()], elsewhere) == {"wrong-gateway": 1}
