"""CKKS: the aggregator adds encrypted updates it cannot read; the key holder decrypts the sum."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts

from fedledger.errors import SecureAggregationError
from fedledger.security.ckks import (
    CkksKeys,
    add_payloads,
    decode_payload,
    encrypt_update,
    public_context_from,
    select,
    unselect,
)


@pytest.fixture(scope="module")
def keys() -> CkksKeys:
    return CkksKeys()


def test_the_sum_of_encrypted_updates_decrypts_to_the_plain_sum(keys: CkksKeys) -> None:
    rng = np.random.default_rng(0)
    updates = [rng.normal(0, 0.1, size=10_117).astype(np.float32) for _ in range(5)]
    ctx = public_context_from(keys.public_context())
    payloads = [encrypt_update(ctx, u, keys.slots) for u in updates]
    assert len(decode_payload(payloads[0])) == 3  # 10 117 values in 4096-slot ciphertexts
    total = keys.decrypt(add_payloads(ctx, payloads), 10_117)
    assert np.abs(total - np.sum(updates, axis=0, dtype=np.float64)).max() < 1e-5


def test_the_aggregator_cannot_decrypt(keys: CkksKeys) -> None:
    ctx = public_context_from(keys.public_context())
    assert not ctx.is_private()
    payload = encrypt_update(ctx, np.ones(10), keys.slots)
    chunk = ts.ckks_vector_from(ctx, decode_payload(payload)[0])
    with pytest.raises(ValueError, match="secret"):
        chunk.decrypt()
    private = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    with pytest.raises(SecureAggregationError, match="secret key"):
        public_context_from(private.serialize(save_secret_key=True))


def test_only_selected_layers_are_encrypted(keys: CkksKeys) -> None:
    update = np.arange(100, dtype=np.float64)
    ranges = [(0, 10), (50, 60)]
    secret, clear = select(update, ranges)
    assert len(secret) == 20 and len(clear) == 80
    assert np.array_equal(unselect(secret, clear, ranges, 100), update)
    with pytest.raises(SecureAggregationError, match="outside"):
        select(update, [(90, 120)])


def test_bad_payloads_are_refused(keys: CkksKeys) -> None:
    ctx = public_context_from(keys.public_context())
    good = encrypt_update(ctx, np.ones(5000), keys.slots)
    for bad in (good[:-3], good + b"x", b"\x00\x00"):
        with pytest.raises(SecureAggregationError, match="malformed"):
            decode_payload(bad)
    short = encrypt_update(ctx, np.ones(10), keys.slots)
    with pytest.raises(SecureAggregationError, match="different lengths"):
        add_payloads(ctx, [good, short])
