"""The signed envelope: canonical wire format, strict decoding, signature binding, JSON form."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import EnvelopeError, FedledgerError
from fedledger.security import (
    Envelope,
    EnvelopeHeader,
    derive_identity,
    envelope_digest,
    seal_envelope,
    verify_envelope,
    verify_header,
)

DEVICE = derive_identity(11, "device", "dev-000")
OTHER = derive_identity(11, "device", "dev-001")
NONCE = bytes(range(16))
BIG = 1 << 20


def _sealed(payload: bytes = b"update-bytes" * 3, scheme: str = "plain-f32") -> Envelope:
    return seal_envelope(DEVICE, 3, 120, scheme, payload, NONCE)


def _reason(data: bytes | bytearray, max_payload: int = BIG) -> str:
    with pytest.raises(EnvelopeError) as info:
        Envelope.decode(data, max_payload=max_payload)
    assert isinstance(info.value, FedledgerError) and isinstance(info.value, ValueError)
    return info.value.reason


def test_round_trip_and_verification() -> None:
    env = _sealed()
    data = env.encode()
    back = Envelope.decode(data, max_payload=BIG)
    assert back == env
    assert back.encode() == data
    assert back.digest() == env.digest()
    assert verify_envelope(back, DEVICE.public_key)
    assert not verify_envelope(back, OTHER.public_key)
    assert back.header.device_id == DEVICE.id
    assert back.header.payload_digest == hashlib.sha256(env.payload).digest()


def test_wire_layout_matches_the_documented_table() -> None:
    payload = b"p" * 10
    env = _sealed(payload)
    data = env.encode()
    n = len("plain-f32")
    assert data[:4] == b"FLEV" and data[4] == 1
    assert struct.unpack(">Q", data[5:13])[0] == 3
    assert data[13:45] == DEVICE.id
    assert struct.unpack(">Q", data[45:53])[0] == 120
    assert data[53] == n and data[54 : 54 + n] == b"plain-f32"
    assert data[54 + n : 86 + n] == hashlib.sha256(payload).digest()
    assert data[86 + n : 102 + n] == NONCE
    assert struct.unpack(">Q", data[102 + n : 110 + n])[0] == len(payload)
    assert data[: 110 + n] == env.header_bytes()
    assert data[110 + n : 174 + n] == env.signature
    assert data[174 + n :] == payload and len(data) == 174 + n + len(payload)


def test_signed_message_and_digest_are_domain_separated() -> None:
    env = _sealed()
    assert verify_header(env.header, env.signature, DEVICE.public_key)
    assert env.signature == DEVICE.sign(b"fedledger/envelope/v1\x00" + env.header_bytes())
    expected = hashlib.sha256(
        b"fedledger/envelope-digest/v1\x00" + env.header_bytes() + env.signature
    ).digest()
    assert env.digest() == expected == envelope_digest(env.header, env.signature)


def test_decode_accepts_bytes_like_input_and_the_exact_size_limit() -> None:
    env = _sealed(b"x" * 100)
    data = env.encode()
    assert Envelope.decode(bytearray(data), max_payload=100) == env
    assert Envelope.decode(memoryview(data), max_payload=100) == env
    assert Envelope.decode(_sealed(b"").encode(), max_payload=0).payload == b""


# --- every decode failure reason --------------------------------------------------------------


def test_wrong_magic_is_malformed() -> None:
    data = bytearray(_sealed().encode())
    data[0:4] = b"FLEW"
    assert _reason(data) == "malformed"
    assert _reason(b"") == "malformed"
    assert _reason(b"FLEV") == "malformed"


def test_unknown_version() -> None:
    data = bytearray(_sealed().encode())
    for version in (0, 2, 255):
        data[4] = version
        assert _reason(data) == "unknown-version"
    assert _reason(b"FLEV\x02") == "unknown-version"


def test_every_truncation_and_any_trailing_byte_is_malformed() -> None:
    data = _sealed(b"abc" * 7).encode()
    for cut in range(len(data)):
        assert _reason(data[:cut]) == "malformed", cut
    assert _reason(data + b"\x00") == "malformed"


def _with_scheme_bytes(raw: bytes) -> bytes:
    env = _sealed()
    data = env.encode()
    n = len(env.header.scheme)
    return data[:53] + bytes([len(raw)]) + raw + data[54 + n :]


@pytest.mark.parametrize(
    "raw", [b"", b"a" * 17, b"plain f32", b"plain-\xff32", b"tab\there", b"nul\x00"]
)
def test_bad_scheme_is_malformed(raw: bytes) -> None:
    assert _reason(_with_scheme_bytes(raw)) == "malformed"


def test_oversize_is_judged_from_the_declared_length_before_reading() -> None:
    data = _sealed(b"x" * 101).encode()
    assert _reason(data, max_payload=100) == "oversize"
    n = len("plain-f32")
    huge = data[: 102 + n] + struct.pack(">Q", (1 << 64) - 1) + data[110 + n : 174 + n]
    assert _reason(huge) == "oversize"  # payload absent: never read


def test_payload_tamper_is_a_digest_mismatch() -> None:
    data = bytearray(_sealed(b"x" * 50).encode())
    data[-1] ^= 1
    assert _reason(data) == "digest-mismatch"


# --- the signature binds every header field ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("round", 4),
        ("device_id", OTHER.id),
        ("n_samples", 121),
        ("scheme", "plain-f16"),
        ("payload_digest", hashlib.sha256(b"other").digest()),
        ("nonce", bytes(16)),
        ("payload_length", 1),
    ],
)
def test_changing_any_header_field_invalidates_the_signature(name: str, value: object) -> None:
    env = _sealed()
    changed = dataclasses.replace(env.header, **{name: value})  # type: ignore[arg-type]
    assert not verify_header(changed, env.signature, DEVICE.public_key)
    assert envelope_digest(changed, env.signature) != env.digest()


def test_flipping_any_header_or_signature_bit_is_caught() -> None:
    env = _sealed(b"y" * 8)
    data = env.encode()
    signed_end = len(env.header_bytes()) + 64
    for i in range(signed_end):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            try:
                decoded = Envelope.decode(bad, max_payload=BIG)
            except EnvelopeError:
                continue
            assert not verify_envelope(decoded, DEVICE.public_key), (i, bit)


def test_verify_never_raises_on_garbage() -> None:
    env = _sealed()
    assert not verify_envelope(None, DEVICE.public_key)  # type: ignore[arg-type]
    assert not verify_envelope(env, b"short")
    assert not verify_header(env.header, b"\x00" * 64, DEVICE.public_key)
    assert not verify_header("header", env.signature, DEVICE.public_key)  # type: ignore[arg-type]


# --- construction-time validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("round", -1),
        ("round", 1 << 64),
        ("round", True),
        ("round", 1.0),
        ("device_id", bytes(31)),
        ("device_id", bytearray(32)),
        ("n_samples", -5),
        ("scheme", ""),
        ("scheme", "x" * 17),
        ("scheme", "plain-f32é"),
        ("payload_digest", bytes(33)),
        ("nonce", bytes(15)),
        ("payload_length", 1 << 64),
    ],
)
def test_invalid_header_fields_are_malformed(name: str, value: object) -> None:
    with pytest.raises(EnvelopeError) as info:
        dataclasses.replace(_sealed().header, **{name: value})  # type: ignore[arg-type]
    assert info.value.reason == "malformed"


def test_an_envelope_is_always_consistent_with_its_payload() -> None:
    env = _sealed(b"abc")
    with pytest.raises(EnvelopeError, match="digest") as info:
        Envelope(env.header, env.signature, b"abd")
    assert info.value.reason == "digest-mismatch"
    with pytest.raises(EnvelopeError) as info:
        Envelope(env.header, env.signature, b"abcd")
    assert info.value.reason == "malformed"
    with pytest.raises(EnvelopeError) as info:
        Envelope(env.header, env.signature[:63], b"abc")
    assert info.value.reason == "malformed"
    with pytest.raises(EnvelopeError) as info:
        seal_envelope(DEVICE, 1, 1, "plain-f32", b"x", bytes(8))
    assert info.value.reason == "malformed"


def test_repr_does_not_dump_the_payload() -> None:
    assert "xxxxxxxx" not in repr(_sealed(b"x" * 1000))


# --- JSON-lines audit form ---------------------------------------------------------------------


def test_json_round_trip_lets_an_auditor_reverify_without_the_payload() -> None:
    env = _sealed(b"secret-update" * 10)
    line = json.dumps({"header": env.header.to_json(), "signature": env.signature.hex()})
    record = json.loads(line)
    header = EnvelopeHeader.from_json(record["header"])
    signature = bytes.fromhex(record["signature"])
    assert header == env.header
    assert verify_header(header, signature, DEVICE.public_key)
    assert envelope_digest(header, signature) == env.digest()
    assert "secret" not in line


def _json_reason(**changes: object) -> str:
    obj: dict[str, object] = dict(_sealed().header.to_json())
    for key, value in changes.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    with pytest.raises(EnvelopeError) as info:
        EnvelopeHeader.from_json(obj)
    return info.value.reason


@pytest.mark.parametrize(
    "changes",
    [
        {"nonce": None},
        {"extra": 1},
        {"round": "3"},
        {"round": -3},
        {"device_id": DEVICE.id.hex().upper()},
        {"device_id": DEVICE.id.hex()[:-1] + "g"},
        {"device_id": DEVICE.id.hex()[:-2]},
        {"nonce": " " + NONCE.hex()[1:]},
        {"payload_digest": 7},
        {"scheme": ""},
    ],
)
def test_json_errors_are_malformed(changes: dict[str, object]) -> None:
    assert _json_reason(**changes) == "malformed"


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_json_unknown_version(version: object) -> None:
    assert _json_reason(version=version) == "unknown-version"


# --- property: any header and payload round-trips ----------------------------------------------

schemes = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16
)


@settings(max_examples=150, deadline=None)
@given(
    round_=st.integers(0, (1 << 64) - 1),
    n_samples=st.integers(0, (1 << 64) - 1),
    scheme=schemes,
    payload=st.binary(max_size=2048),
    nonce=st.binary(min_size=16, max_size=16),
)
def test_any_envelope_round_trips(
    round_: int, n_samples: int, scheme: str, payload: bytes, nonce: bytes
) -> None:
    env = seal_envelope(DEVICE, round_, n_samples, scheme, payload, nonce)
    data = env.encode()
    back = Envelope.decode(data, max_payload=len(payload))
    assert back == env and back.encode() == data
    assert verify_envelope(back, DEVICE.public_key)
    assert EnvelopeHeader.from_json(json.loads(json.dumps(env.header.to_json()))) == env.header
    if payload:
        assert _reason(data, max_payload=len(payload) - 1) == "oversize"
