"""RFC 6962 tree hashing: reference vectors, the recursive definition, proofs that catch lies."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The reference inputs of the Certificate Transparency implementation's Merkle tree tests.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
# Their roots for the first 1..8 leaves.
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
# Their audit path of leaf 5 in the tree of 8, and consistency proofs 1 -> 8, 6 -> 8, 2 -> 5.
CT_PATH_5_OF_8 = [
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
]
CT_CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CT_HASHES = [leaf_hash(d) for d in CT_LEAVES]


def reference_mth(entries: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 writes it, recursively over the raw entries."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_mth(entries[:k]) + reference_mth(entries[k:])
    ).digest()


def test_empty_and_single_leaf_roots() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    assert root_of([leaf_hash(b"x")]) == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_reference_vectors(size: int) -> None:
    assert root_of(CT_HASHES[:size]).hex() == CT_ROOTS[size - 1]


def test_proofs_match_the_reference_vectors() -> None:
    assert [p.hex() for p in inclusion_proof(5, CT_HASHES)] == CT_PATH_5_OF_8
    for (old, new), expected in CT_CONSISTENCY.items():
        assert [p.hex() for p in consistency_proof(old, CT_HASHES[:new])] == expected
        assert verify_consistency(
            old,
            new,
            bytes.fromhex(CT_ROOTS[old - 1]),
            bytes.fromhex(CT_ROOTS[new - 1]),
            [bytes.fromhex(h) for h in expected],
        )


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_root_and_frontier_equal_the_recursive_definition(entries: list[bytes]) -> None:
    leaves = [leaf_hash(e) for e in entries]
    frontier = Frontier()
    for i, leaf in enumerate(leaves):
        frontier.append(leaf)
        if i % 7 == 0:  # every prefix's root, checked now and then
            assert frontier.root() == reference_mth(entries[: i + 1])
    assert root_of(leaves) == frontier.root() == reference_mth(entries)
    assert frontier.size == len(entries)


def test_every_inclusion_proof_of_small_trees_verifies_and_only_for_its_leaf() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(33)]
    for size in range(1, 34):
        root = root_of(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index, leaves[:size])
            assert verify_inclusion(index, size, leaves[index], proof, root)
            other = (index + 1) % size
            if other != index:
                assert not verify_inclusion(other, size, leaves[index], proof, root)
                assert not verify_inclusion(index, size, leaves[other], proof, root)
            assert not verify_inclusion(index, size, leaves[index], proof, node_hash(root, root))


def test_every_consistency_proof_of_small_trees_verifies() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(33)]
    for new in range(0, 34):
        new_root = root_of(leaves[:new])
        for old in range(0, new + 1):
            old_root = root_of(leaves[:old])
            proof = consistency_proof(old, leaves[:new])
            assert verify_consistency(old, new, old_root, new_root, proof), (old, new)
            if 0 < old < new:
                forged = root_of([leaf_hash(b"forged"), *leaves[1:old]])
                assert not verify_consistency(old, new, forged, new_root, proof)
                assert not verify_consistency(old, new, old_root, forged, proof)
                assert not verify_consistency(old, new, old_root, new_root, proof[:-1])


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 200),
    data=st.data(),
)
def test_a_changed_proof_hash_never_verifies(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, leaves)
    root = root_of(leaves)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[j] = bytes([proof[j][0] ^ (1 << (bit % 8))]) + proof[j][1:]
        assert not verify_inclusion(index, size, leaves[index], bad, root)
    old = data.draw(st.integers(1, size))
    cproof = consistency_proof(old, leaves)
    if cproof:
        j = data.draw(st.integers(0, len(cproof) - 1))
        bad = list(cproof)
        bad[j] = bytes(32)
        assert not verify_consistency(old, size, root_of(leaves[:old]), root, bad)


def test_proofs_outside_the_tree_are_refused() -> None:
    leaves = CT_HASHES[:3]
    with pytest.raises(ValueError):
        inclusion_proof(3, leaves)
    with pytest.raises(ValueError):
        consistency_proof(4, leaves)
    assert not verify_inclusion(0, 0, leaves[0], [], EMPTY_ROOT)
    assert not verify_consistency(3, 2, root_of(leaves), root_of(leaves[:2]), [])
    assert verify_consistency(0, 3, EMPTY_ROOT, root_of(leaves), [])
    assert not verify_consistency(0, 3, leaves[0], root_of(leaves), [])
