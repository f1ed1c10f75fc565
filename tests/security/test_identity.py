"""Ed25519 identities: RFC 8032 vectors, deterministic derivation, tamper detection."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.security import ROLES, Identity, derive_identity, member_id, verify_signature

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_test_vector_1() -> None:
    ident = Identity.from_private_bytes("device", "rfc", RFC8032_SECRET)
    assert ident.public_key == RFC8032_PUBLIC
    assert ident.sign(b"") == RFC8032_SIGNATURE
    assert verify_signature(RFC8032_PUBLIC, RFC8032_SIGNATURE, b"")


def test_member_id_is_the_documented_hash() -> None:
    expected = hashlib.sha256(b"fedledger/id/v1\x00device\x00dev-007").digest()
    assert member_id("device", "dev-007") == expected
    assert member_id("gateway", "dev-007") != expected
    assert len(member_id("authority", "")) == 32


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        member_id("miner", "x")
    with pytest.raises(ValueError, match="unknown role"):
        derive_identity(0, "miner", "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1 << 64])
def test_seed_must_fit_eight_bytes(seed: int) -> None:
    with pytest.raises(ValueError, match="8 unsigned bytes"):
        derive_identity(seed, "device", "a")


def test_derivation_is_deterministic_and_distinct() -> None:
    a = derive_identity(42, "device", "dev-000")
    assert a == derive_identity(42, "device", "dev-000")
    assert a.sign(b"m") == derive_identity(42, "device", "dev-000").sign(b"m")
    assert a.id == member_id("device", "dev-000")
    others = [
        derive_identity(43, "device", "dev-000"),
        derive_identity(42, "device", "dev-001"),
        derive_identity(42, "gateway", "dev-000"),
    ]
    keys = {a.public_key, *(o.public_key for o in others)}
    assert len(keys) == 4
    assert len({derive_identity(1, r, "n").public_key for r in ROLES}) == len(ROLES)


def test_generated_identities_are_fresh() -> None:
    a, b = Identity.generate("validator", "v"), Identity.generate("validator", "v")
    assert a.id == b.id and a.public_key != b.public_key
    assert verify_signature(a.public_key, a.sign(b"x"), b"x")


def test_identity_is_immutable_and_hides_its_key() -> None:
    ident = derive_identity(0, "device", "d")
    with pytest.raises(AttributeError):
        ident.name = "e"
    with pytest.raises(AttributeError):
        del ident.role
    assert "private" not in repr(ident).lower() and "signing" not in repr(ident)
    with pytest.raises(TypeError):
        pickle.dumps(ident)
    assert len({ident, derive_identity(0, "device", "d")}) == 1


@settings(max_examples=50, deadline=None)
@given(message=st.binary(max_size=200), data=st.data())
def test_any_bit_flip_breaks_the_signature(message: bytes, data: st.DataObject) -> None:
    ident = derive_identity(5, "device", "d")
    sig = ident.sign(message)
    assert verify_signature(ident.public_key, sig, message)
    i = data.draw(st.integers(0, 63))
    bad_sig = sig[:i] + bytes([sig[i] ^ 1 << data.draw(st.integers(0, 7))]) + sig[i + 1 :]
    assert not verify_signature(ident.public_key, bad_sig, message)
    if message:
        j = data.draw(st.integers(0, len(message) - 1))
        bad_msg = message[:j] + bytes([message[j] ^ 0x80]) + message[j + 1 :]
        assert not verify_signature(ident.public_key, sig, bad_msg)
    assert not verify_signature(derive_identity(6, "device", "d").public_key, sig, message)


@pytest.mark.parametrize(
    ("key", "sig", "msg"),
    [
        (b"", bytes(64), b""),
        (bytes(31), bytes(64), b""),
        (bytes(32), bytes(64), b""),  # small-order point
        (b"\xff" * 32, bytes(64), b""),
        (RFC8032_PUBLIC, RFC8032_SIGNATURE[:63], b""),
        (RFC8032_PUBLIC, RFC8032_SIGNATURE + b"\x00", b""),
        (RFC8032_PUBLIC, RFC8032_SIGNATURE, None),
        (None, RFC8032_SIGNATURE, b""),
        (RFC8032_PUBLIC.hex()[:32], RFC8032_SIGNATURE, b""),
        (RFC8032_PUBLIC, 64, b""),
    ],
)
def test_verify_never_raises_on_garbage(key: object, sig: object, msg: object) -> None:
    assert verify_signature(key, sig, msg) is False  # type: ignore[arg-type]


def test_verify_accepts_bytes_like_inputs() -> None:
    assert verify_signature(
        bytearray(RFC8032_PUBLIC), memoryview(RFC8032_SIGNATURE), memoryview(b"")
    )
