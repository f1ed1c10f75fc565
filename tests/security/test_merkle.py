"""Merkle trees against RFC 6962: published vectors, a from-the-RFC reference, and tampering."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.security import (
    MerkleTree,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)

# The test inputs d0..d7 and roots of the Certificate Transparency reference implementation's
# RFC 6962 tests (also used by Trillian and transparency-dev/merkle).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PROOF_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


# --- a reference written directly from RFC 6962 §2.1 and §2.1.1 --------------------------------


def _split(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_sides(m: int, n: int) -> list[str]:
    """Which side each audit-path sibling of leaf m is on, bottom-up (shape of ``ref_path``)."""
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_sides(m, k), "right"]
    return [*ref_sides(m - k, n - k), "left"]


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


# --- published vectors -------------------------------------------------------------------------


def test_empty_tree_and_certificate_transparency_roots() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert MerkleTree([]).root == hashlib.sha256(b"").digest() and len(MerkleTree([])) == 0
    for n in range(1, 9):
        assert merkle_root(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1], n
        assert ref_mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1], n


def test_certificate_transparency_proof_vector() -> None:
    proof = inclusion_proof(CT_LEAVES, 0)
    assert [p.hex() for p in proof] == CT_PROOF_0_OF_8
    assert verify_inclusion(CT_LEAVES[0], 0, 8, proof, bytes.fromhex(CT_ROOTS[7]))


def test_hash_prefixes() -> None:
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


# --- agreement with the reference and verification of every proof ------------------------------


def test_every_size_up_to_64_matches_the_reference_exhaustively() -> None:
    for n in range(1, 65):
        leaves = _leaves(n)
        tree = MerkleTree(leaves)
        root = ref_mth(leaves)
        assert tree.root == root == merkle_root(leaves)
        for i in range(n):
            proof = tree.proof(i)
            assert proof == ref_path(i, leaves) == inclusion_proof(leaves, i)
            assert verify_inclusion(leaves[i], i, n, proof, root)


def test_every_proof_verifies_for_every_size_up_to_200() -> None:
    all_leaves = _leaves(200)
    for n in range(1, 201):
        leaves = all_leaves[:n]
        tree = MerkleTree(leaves)
        for i in range(n):
            assert verify_inclusion(leaves[i], i, n, tree.proof(i), tree.root), (n, i)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), leaf_data=st.lists(st.binary(max_size=40), min_size=1, max_size=70))
def test_arbitrary_leaf_data_matches_the_reference(n: int, leaf_data: list[bytes]) -> None:
    tree = MerkleTree(leaf_data)
    assert tree.root == ref_mth(leaf_data)
    i = n % len(leaf_data)
    assert tree.proof(i) == ref_path(i, leaf_data)


# --- tampering ---------------------------------------------------------------------------------


def _flip(b: bytes, at: int, bit: int) -> bytes:
    return b[:at] + bytes([b[at] ^ (1 << bit)]) + b[at + 1 :]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, 200))
def test_any_tampering_breaks_verification(data: st.DataObject, n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, n - 1))
    leaf, proof, root = leaves[i], tree.proof(i), tree.root
    assert verify_inclusion(leaf, i, n, proof, root)
    at, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))

    assert not verify_inclusion(_flip(leaf, at, bit), i, n, proof, root)
    assert not verify_inclusion(leaf, i, n, proof, _flip(root, at, bit))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], at, bit), *proof[k + 1 :]]
        assert not verify_inclusion(leaf, i, n, bad, root)
        assert not verify_inclusion(leaf, i, n, proof[:-1], root)
    assert not verify_inclusion(leaf, i, n, [*proof, root], root)
    other_index = data.draw(st.integers(0, n).filter(lambda j: j != i))
    assert not verify_inclusion(leaf, other_index, n, proof, root)
    other_size = data.draw(st.integers(1, 260).filter(lambda m: m != n))
    # The size is authenticated together with the root (it is committed with it); the algorithm
    # itself accepts another size exactly when that size gives leaf i the same path shape.
    same_shape = other_size > i and ref_sides(i, other_size) == ref_sides(i, n)
    assert verify_inclusion(leaf, i, other_size, proof, root) == same_shape


def test_a_wrong_size_fails_unless_the_path_shape_is_identical() -> None:
    leaves = _leaves(6)
    proof, root = inclusion_proof(leaves, 0), merkle_root(leaves)
    assert verify_inclusion(leaves[0], 0, 7, proof, root)  # same shape: RRR
    assert ref_sides(0, 7) == ref_sides(0, 6)
    for size in (1, 2, 3, 4, 9, 16):
        assert not verify_inclusion(leaves[0], 0, size, proof, root), size
    for i in range(6):
        for size in range(1, 20):
            ok = verify_inclusion(leaves[i], i, size, inclusion_proof(leaves, i), root)
            assert ok == (size > i and ref_sides(i, size) == ref_sides(i, 6)), (i, size)


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "root"),
    [
        (b"x", 0, 0, [], hashlib.sha256(b"").digest()),
        (b"x", -1, 1, [], leaf_hash(b"x")),
        (b"x", 1, 1, [], leaf_hash(b"x")),
        (b"x", True, 2, [], leaf_hash(b"x")),
        (b"x", 0, 1.0, [], leaf_hash(b"x")),
        (b"x", 0, 1, [], leaf_hash(b"x")[:31]),
        (b"x", 0, 1, None, leaf_hash(b"x")),
        (b"x", 0, 2, [b"short"], leaf_hash(b"x")),
        (b"x", 0, 2, ["a" * 32], leaf_hash(b"x")),
        (5, 0, 1, [], leaf_hash(bytes(5))),
        ("x", 0, 1, [], leaf_hash(b"x")),
        (b"x", 0, 1, [], "r" * 32),
        (b"x", 0, 1 << 70, [bytes(32)] * 65, bytes(32)),
    ],
)
def test_verify_never_raises_on_bad_input(
    leaf: object, index: object, size: object, proof: object, root: object
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root) is False  # type: ignore[arg-type]


def test_a_one_leaf_tree_needs_an_empty_proof() -> None:
    assert verify_inclusion(b"x", 0, 1, [], leaf_hash(b"x"))
    assert verify_inclusion(bytearray(b"x"), 0, 1, [], memoryview(leaf_hash(b"x")))


def test_a_node_cannot_be_passed_off_as_a_leaf() -> None:
    """Second preimage: present the two children of an interior node as one 64-byte "leaf"."""
    leaves = _leaves(4)
    root = merkle_root(leaves)
    forged_leaf = leaf_hash(leaves[0]) + leaf_hash(leaves[1])
    forged_proof = [node_hash(leaf_hash(leaves[2]), leaf_hash(leaves[3]))]
    assert leaf_hash(forged_leaf) != node_hash(leaf_hash(leaves[0]), leaf_hash(leaves[1]))
    assert not verify_inclusion(forged_leaf, 0, 2, forged_proof, root)

    def h(b: bytes) -> bytes:
        return hashlib.sha256(b).digest()

    # Without the 0x00/0x01 prefixes the same forgery is accepted.
    hashed = [h(x) for x in leaves]
    naive_root = h(h(hashed[0] + hashed[1]) + h(hashed[2] + hashed[3]))
    naive_forged_leaf = hashed[0] + hashed[1]
    assert h(h(naive_forged_leaf) + h(hashed[2] + hashed[3])) == naive_root


def test_out_of_range_proof_requests_raise_index_error() -> None:
    tree = MerkleTree(_leaves(3))
    for bad in (-1, 3):
        with pytest.raises(IndexError):
            tree.proof(bad)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


def test_a_thousand_proofs_take_milliseconds() -> None:
    leaves = _leaves(1000)
    start = time.perf_counter()
    tree = MerkleTree(leaves)
    proofs = [tree.proof(i) for i in range(1000)]
    elapsed = time.perf_counter() - start
    assert max(len(p) for p in proofs) == 10
    assert elapsed < 0.25, f"building 1000 proofs took {elapsed * 1000:.0f} ms"
