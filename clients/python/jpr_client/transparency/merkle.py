"""The Merkle tree of RFC 9162 section 2.1 (SHA-256): hashes, proof verification, proof building.

Verification follows the RFC's own algorithms (2.1.3.2 inclusion, 2.1.4.2
consistency) so it can be checked line by line against the standard. Building
follows transparency-dev/merkle's `proof` and `compact` packages: a log stores
only the hashes of complete, aligned subtrees (what `Appender` emits as leaves
arrive), and every proof element is the Merkle tree hash of a leaf range that is
the right fold of a few such stored nodes. So a proof is `inclusion_ranges` or
`consistency_ranges`, each range turned into nodes by `range_nodes`, the stored
hashes of those nodes combined by `fold` (`build_proof` does the three steps).

Node addresses are (level, index): level 0 holds the leaves, and node
(level, i) covers leaves [i * 2**level, (i + 1) * 2**level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Appender",
    "ProofError",
    "build_proof",
    "consistency_ranges",
    "fold",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}), the root of the empty tree (RFC 9162 section 2.1.1)."""

Node = tuple[int, int]
"""A complete subtree as (level, index)."""


class ProofError(ValueError):
    """An inclusion or consistency proof does not prove what it was given to prove."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d), RFC 9162 section 2.1.1.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the hash of an interior node (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def fold(hashes: Sequence[bytes]) -> bytes:
    """The right fold node_hash(h1, node_hash(h2, ... node_hash(hn-1, hn))): a range's MTH from its subtrees.

    >>> fold([leaf_hash(b"a"), leaf_hash(b"b")]) == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    True
    """
    if not hashes:
        raise ValueError("fold needs at least one hash: the MTH of an empty range is EMPTY_ROOT, not a fold")
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = node_hash(left, folded)
    return folded


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over the given leaf hashes (not leaf data), in O(n) time and O(log n) space.

    >>> root([]) == EMPTY_ROOT
    True
    """
    appender = Appender()
    for hashed in leaf_hashes:
        appender.append(hashed)
    return appender.root()


class Appender:
    """The compact range [0, size) of a growing log: the hashes of its largest complete subtrees.

    Each `append` reports the complete nodes the new leaf finishes, which is
    everything a log has to store to answer every later proof with
    `build_proof`. A log restarts from a stored `frontier()` and `size`.

    >>> log = Appender()
    >>> [(level, index) for level, index, _ in log.append(leaf_hash(b"a"))]
    [(0, 0)]
    >>> [(level, index) for level, index, _ in log.append(leaf_hash(b"b"))]
    [(0, 1), (1, 0)]
    """

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"a tree size is at least 0, not {size}")
        if len(frontier) != size.bit_count():
            raise ValueError(f"a tree of size {size} has a frontier of {size.bit_count()} hashes "
                             f"(one per set bit of the size), not {len(frontier)}")
        _check_hashes("frontier", frontier, ValueError)
        self._size = size
        self._frontier = list(frontier)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf; return the complete nodes (level, index, hash) it completes, the leaf first."""
        _check_hashes("leaf hash", [leaf_hash], ValueError)
        level, index, hashed = 0, self._size, leaf_hash
        completed = [(level, index, hashed)]
        while index & 1:  # a right child: merge with the complete left sibling on top of the frontier
            hashed = node_hash(self._frontier.pop(), hashed)
            level, index = level + 1, index >> 1
            completed.append((level, index, hashed))
        self._frontier.append(hashed)
        self._size += 1
        return completed

    def frontier(self) -> list[bytes]:
        """The hashes of range_nodes(0, size), largest subtree first."""
        return list(self._frontier)

    def root(self) -> bytes:
        """MTH of the leaves appended so far (EMPTY_ROOT before the first)."""
        return fold(self._frontier) if self._frontier else EMPTY_ROOT


def _largest_power_of_two_below(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1): where RFC 9162 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [begin, end) whose MTHs are, in order, PATH(index, D[size]) of RFC 9162 2.1.3.1.

    >>> inclusion_ranges(0, 3)
    [(1, 2), (2, 3)]
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}: an inclusion proof needs 0 <= index < size")
    ranges = []
    begin, end = 0, size
    while end - begin > 1:  # top-down; the proof lists the siblings bottom-up
        middle = begin + _largest_power_of_two_below(end - begin)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((begin, middle))
            begin = middle
    return ranges[::-1]


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs are, in order, PROOF(size1, D[size2]) of RFC 9162 2.1.4.1.

    Empty when size1 is 0 or equals size2: nothing needs proving.

    >>> consistency_ranges(3, 7)
    [(2, 3), (3, 4), (0, 2), (4, 7)]
    """
    if not 0 <= size1 <= size2:
        raise ValueError(f"a consistency proof goes from a smaller tree to a larger one: 0 <= size1 <= size2, not {size1} and {size2}")
    if size1 == 0:
        return []
    ranges = []
    begin, end, whole_old_tree = 0, size2, True  # SUBPROOF(m, D[begin:end], b)
    while size1 - begin < end - begin:
        middle = begin + _largest_power_of_two_below(end - begin)
        if size1 <= middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((begin, middle))
            begin, whole_old_tree = middle, False
    if not whole_old_tree:  # the verifier knows MTH(D[0:size1]) itself, but not this inner subtree
        ranges.append((begin, end))
    return ranges[::-1]


def range_nodes(begin: int, end: int) -> list[Node]:
    """The complete subtrees (level, index), left to right, whose `fold` is the MTH of leaves [begin, end).

    Holds for every range that `inclusion_ranges` and `consistency_ranges`
    return (their sizes decompose into strictly decreasing powers of two);
    other ranges are refused with ValueError, as their fold is not their MTH.

    >>> range_nodes(0, 7)
    [(2, 0), (1, 2), (0, 6)]
    """
    if not 0 <= begin < end:
        raise ValueError(f"a leaf range needs 0 <= begin < end, not [{begin}, {end})")
    nodes = []
    position = begin
    while position < end:
        level = (position & -position).bit_length() - 1 if position else (end - 1).bit_length()
        while position + (1 << level) > end:
            level -= 1
        nodes.append((level, position >> level))
        position += 1 << level
    if any(right[0] >= left[0] for left, right in zip(nodes, nodes[1:])):
        raise ValueError(f"the leaf range [{begin}, {end}) is not one a proof uses: its subtrees {nodes} "
                         "do not fold into its Merkle tree hash")
    return nodes


def build_proof(ranges: Sequence[tuple[int, int]], stored: Callable[[int, int], bytes]) -> list[bytes]:
    """The proof whose elements are the MTHs of `ranges`, from `stored(level, index)`, the log's node hashes.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> log, nodes = Appender(), {}
    >>> for hashed in leaves:
    ...     nodes.update({(level, index): h for level, index, h in log.append(hashed)})
    >>> proof = build_proof(inclusion_ranges(2, 5), lambda level, index: nodes[level, index])
    >>> verify_inclusion(leaves[2], 2, 5, proof, log.root())
    """
    return [fold([stored(level, index) for level, index in range_nodes(begin, end)]) for begin, end in ranges]


def _check_hashes(what: str, hashes: Sequence[bytes], error: type[ValueError] = ProofError) -> None:
    for position, hashed in enumerate(hashes):
        if len(hashed) != HASH_SIZE:
            raise error(f"{what} element {position} is {len(hashed)} bytes; a SHA-256 hash is {HASH_SIZE}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `proof` shows leaf `index` with `leaf_hash` in the tree of `size` with `root`: RFC 9162 2.1.3.2.

    Raises ProofError, saying which input is wrong, when it does not.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}; check the index and tree size the proof was asked for")
    _check_hashes("leaf hash", [leaf_hash])
    _check_hashes("inclusion proof", proof)
    expected = len(inclusion_ranges(index, size))
    if len(proof) != expected:
        raise ProofError(f"an inclusion proof of leaf {index} in a tree of size {size} has {expected} hashes, this one has {len(proof)}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProofError(f"the inclusion proof of leaf {index} in a tree of size {size} does not lead to the given root: "
                         "the leaf hash, the proof or the root (tree head) is wrong")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`: RFC 9162 2.1.4.2.

    Equal sizes need an empty proof and equal roots; from the empty tree
    (size1 0, root1 EMPTY_ROOT) every tree is consistent with an empty proof.
    Raises ProofError, saying which input is wrong, when the proof fails.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"a consistency proof goes from a smaller tree to a larger one: 0 <= size1 <= size2, not {size1} and {size2}")
    if (size1 == 0 or size1 == size2) and proof:
        raise ProofError(f"a consistency proof from size {size1} to {size2} is empty, this one has {len(proof)} hashes")
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise ProofError("root1 of a tree of size 0 must be EMPTY_ROOT, the SHA-256 of the empty string")
    if size1 == size2 and root1 != root2:
        raise ProofError(f"two tree heads of size {size1} with different roots: the log forked (or a root is misread)")
    if size1 == 0 or size1 == size2:
        return
    _check_hashes("consistency proof", proof)
    expected = len(consistency_ranges(size1, size2))
    if len(proof) != expected:
        raise ProofError(f"a consistency proof from size {size1} to {size2} has {expected} hashes, this one has {len(proof)}")
    _verify_consistency_path(size1, size2, list(proof), root1, root2)


def _verify_consistency_path(size1: int, size2: int, path: list[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 2.1.4.2 steps 2 to 7, for 0 < size1 < size2 and a proof of the right length."""
    if size1 & (size1 - 1) == 0:  # an exact power of two: the old root is the proof's first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the consistency proof from size {size1} to {size2} is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the consistency proof from size {size1} to {size2} is shorter than the tree is deep")
    if fr != root1:
        raise ProofError(f"the consistency proof from size {size1} to {size2} does not lead to root1: "
                         "the proof is wrong or root1 is not the root of that log at that size")
    if sr != root2:
        raise ProofError(f"the consistency proof from size {size1} to {size2} does not lead to root2: "
                         "the log's new tree head does not extend the old one, or the proof is wrong")
