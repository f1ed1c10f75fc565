"""Enclave primitives: attestation quotes and sealing updates to an attested key.

See :mod:`fedledger.security.enclave.quote` (what an enclave proves about itself) and
:mod:`fedledger.security.enclave.sealing` (how devices make their updates readable only there).
"""

from fedledger.security.enclave.quote import (
    QUOTE_VERSION,
    Quote,
    measure,
    measure_paths,
    sign_quote,
    verify_quote,
)
from fedledger.security.enclave.sealing import SEALED_OVERHEAD, EnclaveKey, open_sealed, seal

__all__ = [
    "QUOTE_VERSION",
    "SEALED_OVERHEAD",
    "EnclaveKey",
    "Quote",
    "measure",
    "measure_paths",
    "open_sealed",
    "seal",
    "sign_quote",
    "verify_quote",
]
