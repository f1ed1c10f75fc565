"""Merkle trees over sha256 as in Certificate Transparency (RFC 6962 §2.1, RFC 9162 §2.1).

A gateway commits one root per round over the digests of the envelopes it accepted; each device
gets an audit path proving its envelope is included. Leaves and interior nodes are hashed with
distinct prefixes, ``leaf_hash(d) = sha256(0x00 || d)`` and ``node_hash(l, r) =
sha256(0x01 || l || r)``, so an interior node can never be passed off as a leaf (the
second-preimage attack on unprefixed trees). The tree shape is RFC 6962's: a list of ``n > 1``
leaves splits at ``k``, the largest power of two smaller than ``n``; the root of the empty list is
``sha256(b"")``.

That shape equals the bottom-up construction in which each level pairs neighbours and carries an
odd last node up unchanged; :class:`MerkleTree` builds it that way, once, in O(n) hashes, and then
serves any audit path in O(log n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

__all__ = [
    "MerkleTree",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "verify_inclusion",
]

_HASH_SIZE: Final = 32
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_MAX_DEPTH: Final = 64  # a proof for a tree of < 2**64 leaves has at most 64 entries


def leaf_hash(data: bytes) -> bytes:
    """``sha256(0x00 || data)``, the hash of a leaf (RFC 6962 §2.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``sha256(0x01 || left || right)``, the hash of an interior node (RFC 6962 §2.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """All levels of the RFC 6962 tree over ``leaves``, computed once.

    Parameters
    ----------
    leaves
        Leaf data (for fedledger, 32-byte envelope digests); hashed with :func:`leaf_hash`.

    Examples
    --------
    >>> tree = MerkleTree([b"a", b"b", b"c"])
    >>> verify_inclusion(b"c", 2, tree.size, tree.proof(2), tree.root)
    True
    """

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        level = [leaf_hash(d) for d in leaves]
        levels = [level]
        while len(level) > 1:
            up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                up.append(level[-1])  # an odd last node moves up unchanged
            levels.append(up)
            level = up
        self._levels: list[list[bytes]] = levels

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash (RFC 6962 §2.1); ``sha256(b"")`` for no leaves."""
        top = self._levels[-1]
        return top[0] if top else hashlib.sha256(b"").digest()

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (RFC 6962 §2.1.1), bottom-up.

        Raises
        ------
        IndexError
            If ``index`` is not in ``range(size)``.
        """
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} not in a tree of {self.size} leaves")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of ``leaves`` (RFC 6962 §2.1)."""
    return MerkleTree(leaves).root


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path ``PATH(index, leaves)`` (RFC 6962 §2.1.1), bottom-up.

    Build a :class:`MerkleTree` instead when several proofs of one tree are needed.

    Raises
    ------
    IndexError
        If ``index`` is not in ``range(len(leaves))``.
    """
    return MerkleTree(leaves).proof(index)


def verify_inclusion(
    leaf: bytes | bytearray | memoryview,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes | bytearray | memoryview,
) -> bool:
    """Whether ``proof`` puts leaf data ``leaf`` at ``index`` in a tree of ``size`` with ``root``.

    The algorithm of RFC 9162 §2.1.3.2, starting from ``leaf_hash(leaf)``. Never raises: any
    malformed input (wrong types, sizes, index or proof length) gives ``False``.

    ``size`` must come from the same authenticated source as ``root`` (the committed tree
    head): the algorithm checks the path's shape for ``(index, size)``, and sizes that give leaf
    ``index`` the same shape — e.g. 5, 6 and 7 for leaf 0 — accept the same proof.
    """
    try:
        if (
            not isinstance(leaf, _BYTES_LIKE)
            or not isinstance(root, _BYTES_LIKE)
            or type(index) is not int
            or type(size) is not int
            or not 0 <= index < size
            or len(root) != _HASH_SIZE
            or len(proof) > _MAX_DEPTH
            or not all(isinstance(p, _BYTES_LIKE) and len(p) == _HASH_SIZE for p in proof)
        ):
            return False
        fn, sn = index, size - 1
        r = leaf_hash(bytes(leaf))
        for item in proof:
            p = bytes(item)
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and r == bytes(root)
    except (TypeError, ValueError):
        return False
