"""RFC 6962 Merkle tree hashing: leaf and node hashes, tree roots, inclusion and consistency proofs.

The tree is the one of RFC 6962 section 2.1 (and RFC 9162 section 2.1): a leaf hash is
``SHA-256(0x00 || entry)``, an interior node ``SHA-256(0x01 || left || right)``, the empty tree's
root is ``SHA-256()``, and a tree of n > 1 leaves splits at the largest power of two below n.
Proof generation follows RFC 6962 (``PATH`` and ``PROOF``), proof verification the algorithms of
RFC 9162 sections 2.1.3.2 and 2.1.4.2. Everything here is pure and works on 32-byte hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_BYTES",
    "Frontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

#: Length of every hash in the tree (SHA-256).
HASH_BYTES = 32
#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry as a leaf: ``SHA-256(0x00 || entry)``.

    Args:
        entry: The entry's bytes.

    Returns:
        The 32-byte leaf hash.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: The left child's hash.
        right: The right child's hash.

    Returns:
        The 32-byte node hash.

    >>> node_hash(leaf_hash(b"a"), leaf_hash(b"b")) == root_of([leaf_hash(b"a"), leaf_hash(b"b")])
    True
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (for n >= 2).

    >>> [_split(n) for n in (2, 3, 4, 5, 8, 9)]
    [1, 2, 2, 4, 4, 8]
    """
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a growing tree: appends a leaf and gives the root in O(log n).

    It keeps the roots of the perfect subtrees that the binary expansion of the size splits
    the leaves into, largest first; the tree root folds them from the right, which is exactly
    the RFC 6962 split at the largest power of two.

    >>> f = Frontier()
    >>> f.root() == EMPTY_ROOT
    True
    >>> for word in (b"a", b"b", b"c"):
    ...     f.append(leaf_hash(word))
    >>> f.size, f.root() == root_of([leaf_hash(w) for w in (b"a", b"b", b"c")])
    (3, True)
    """

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash.

        Args:
            leaf: A 32-byte leaf hash (see :func:`leaf_hash`).
        """
        node = leaf
        size = self._size
        while size & 1:  # merge equal-sized perfect subtrees, as binary addition carries
            node = node_hash(self._peaks.pop(), node)
            size >>= 1
        self._peaks.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The Merkle tree hash of every leaf appended so far.

        Returns:
            The 32-byte root (``EMPTY_ROOT`` for no leaves).
        """
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node

    def copy(self) -> Frontier:
        """An independent copy (to try an append that may be rolled back)."""
        other = Frontier()
        other._size = self._size
        other._peaks = list(self._peaks)
        return other


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes.

    Args:
        leaves: The leaf hashes, in log order.

    Returns:
        The 32-byte root.

    >>> root_of([]) == EMPTY_ROOT
    True
    >>> root_of([leaf_hash(b"x")]) == leaf_hash(b"x")
    True
    """
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (RFC 6962 ``PATH``).

    Args:
        index: The leaf's position, ``0 <= index < len(leaves)``.
        leaves: The leaf hashes of the tree.

    Returns:
        The sibling hashes from the leaf up to the root.

    Raises:
        ValueError: ``index`` is outside the tree.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> proof = inclusion_proof(3, leaves)
    >>> verify_inclusion(3, 5, leaves[3], proof, root_of(leaves))
    True
    """
    if not 0 <= index < len(leaves):
        raise ValueError("the leaf index is outside the tree")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    siblings: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            siblings.append(root_of(leaves[lo + k : hi]))
            hi = lo + k
        else:
            siblings.append(root_of(leaves[lo : lo + k]))
            lo = lo + k
    path.extend(reversed(siblings))
    return path


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of the first ``old_size`` leaves is a prefix (RFC 6962 ``PROOF``).

    Args:
        old_size: Size of the earlier tree, ``0 <= old_size <= len(leaves)``.
        leaves: The leaf hashes of the later tree.

    Returns:
        The proof's hashes (empty when ``old_size`` is 0 or equals the later size).

    Raises:
        ValueError: ``old_size`` is outside ``[0, len(leaves)]``.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(7)]
    >>> proof = consistency_proof(3, leaves)
    >>> verify_consistency(3, 7, root_of(leaves[:3]), root_of(leaves), proof)
    True
    """
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError("the earlier tree size is outside the later tree")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []
    m, lo, hi, whole = old_size, 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(root_of(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_of(leaves[lo : lo + k]))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(root_of(leaves[lo:hi]))
    proof.reverse()
    return proof


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Implements RFC 9162 section 2.1.3.2.

    Args:
        index: The leaf's claimed position.
        size: The tree's size.
        leaf: The leaf hash.
        proof: The audit path, as :func:`inclusion_proof` returns it.
        root: The tree's root.

    Returns:
        True only if the proof verifies.
    """
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``(old_size, old_root)`` is a prefix of the newer one.

    Implements RFC 9162 section 2.1.4.2; an empty earlier tree is a prefix of every tree.

    Args:
        old_size: Size of the earlier tree.
        new_size: Size of the later tree.
        old_root: Root of the earlier tree.
        new_root: Root of the later tree.
        proof: The proof, as :func:`consistency_proof` returns it.

    Returns:
        True only if the proof verifies.
    """
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
