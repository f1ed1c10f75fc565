"""Attestation quotes and sealed boxes: what devices check before sealing, and who can open."""

from __future__ import annotations

import os

import pytest

from fedledger.errors import AttestationError, EnvelopeError
from fedledger.security.enclave import (
    EnclaveKey,
    Quote,
    measure,
    seal,
    sign_quote,
    verify_quote,
)
from fedledger.security.identity import derive_identity

PLATFORM = derive_identity(0, "authority", "platform")
CODE = {"enclave/server.py": b"def aggregate(): ...\n", "strategies/median.py": b"median\n"}
CONFIG = {"strategy": "median", "secure_aggregation": "enclave"}
MEASUREMENT = measure(CODE, CONFIG)
ENCLAVE = EnclaveKey(seed=b"k" * 32)
NONCE = os.urandom(32)


def quote(nonce: bytes = NONCE, measurement: bytes = MEASUREMENT) -> Quote:
    return sign_quote(PLATFORM, measurement, ENCLAVE.public_key, nonce)


def check(q: Quote, nonce: bytes = NONCE, registered: bytes = MEASUREMENT) -> None:
    verify_quote(
        q, platform_key=PLATFORM.public_key, measurement_ok=lambda m: m == registered, nonce=nonce
    )


def test_a_good_quote_verifies_and_round_trips() -> None:
    q = quote()
    check(q)
    assert Quote.decode(q.encode()) == q
    assert len(q.digest()) == 32 and q.digest() != quote(os.urandom(32)).digest()


def test_changed_enclave_code_or_config_is_refused() -> None:
    changed = measure({**CODE, "strategies/median.py": b"mean\n"}, CONFIG)
    assert changed != MEASUREMENT
    assert measure(CODE, {**CONFIG, "strategy": "fedavg"}) != MEASUREMENT
    with pytest.raises(AttestationError, match="not registered"):
        check(quote(measurement=changed))


def test_a_replayed_quote_is_refused() -> None:
    old = quote(nonce=os.urandom(32))
    with pytest.raises(AttestationError, match="replayed"):
        check(old)


def test_a_forged_or_altered_quote_is_refused() -> None:
    q = quote()
    impostor = derive_identity(0, "authority", "impostor")
    with pytest.raises(AttestationError, match="signature"):
        check(sign_quote(impostor, MEASUREMENT, ENCLAVE.public_key, NONCE))
    other_key = EnclaveKey(seed=b"x" * 32).public_key  # someone swaps in their own key
    with pytest.raises(AttestationError, match="signature"):
        check(Quote(q.measurement, other_key, q.signing_key, q.data, q.nonce, q.signature))
    with pytest.raises(AttestationError, match="signature"):  # or their own transcript key
        check(Quote(q.measurement, q.enclave_key, other_key, q.data, q.nonce, q.signature))
    raw = bytearray(q.encode())
    raw[0] ^= 1
    with pytest.raises(AttestationError, match="magic"):
        Quote.decode(bytes(raw))
    with pytest.raises(AttestationError, match="bytes"):
        Quote.decode(q.encode()[:-1])


def test_only_the_enclave_can_open_a_sealed_update() -> None:
    update = os.urandom(4000)
    sealed = seal(update, ENCLAVE.public_key)
    assert ENCLAVE.open(sealed) == update
    assert seal(update, ENCLAVE.public_key) != sealed  # a fresh ephemeral key every time
    outsider = EnclaveKey()
    with pytest.raises(EnvelopeError) as err:
        outsider.open(sealed)
    assert err.value.reason == "unsealable"
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(EnvelopeError):
        ENCLAVE.open(bytes(tampered))


def test_the_enclave_key_stays_in_its_process() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(ENCLAVE)
    assert ENCLAVE.public_key.hex()[:16] in repr(ENCLAVE)
