"""Security plug-ins: Ed25519 identities, signed update envelopes, payloads, Merkle trees.

Only :mod:`fedledger.errors`, :mod:`fedledger.digest` and third-party libraries are imported
here; orchestration code wires these pieces into the round (DESIGN.md, "One round, as data").
"""

from fedledger.security.envelope import (
    ENVELOPE_VERSION,
    Envelope,
    EnvelopeHeader,
    envelope_digest,
    seal_envelope,
    verify_envelope,
    verify_header,
)
from fedledger.security.identity import (
    ROLES,
    Identity,
    Role,
    derive_identity,
    member_id,
    verify_signature,
)
from fedledger.security.merkle import (
    MerkleTree,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)
from fedledger.security.payload import PLAIN_F32, decode_f32, encode_f32

__all__ = [
    "ENVELOPE_VERSION",
    "PLAIN_F32",
    "ROLES",
    "Envelope",
    "EnvelopeHeader",
    "Identity",
    "MerkleTree",
    "Role",
    "decode_f32",
    "derive_identity",
    "encode_f32",
    "envelope_digest",
    "inclusion_proof",
    "leaf_hash",
    "member_id",
    "merkle_root",
    "node_hash",
    "seal_envelope",
    "verify_envelope",
    "verify_header",
    "verify_inclusion",
    "verify_signature",
]
