"""Proofs cost O(log n) to serve: the stored nodes a proof reads grow with log2 of the tree, not with it.

Every proof element is the right fold of complete, aligned subtrees the registry stores
(`range_nodes`), and the registry reads them all in one query (registry/store/log.py).
Checked here over trees up to 2**40 leaves, which no test could build, by counting the
nodes each proof names; a proof that read a range leaf by leaf would name millions.
"""

from __future__ import annotations

import random

import pytest

from jpr_client.transparency.merkle import consistency_ranges, inclusion_ranges, range_nodes

SIZES = [1, 2, 3, 7, 8, 9, 1000, 65_537, 10_000_000, 2**31 + 12345, 2**40 - 1]


def nodes_read(ranges: list[tuple[int, int]]) -> int:
    return sum(len(range_nodes(begin, end)) for begin, end in ranges)


def bound(size: int) -> int:
    """Two nodes per level: a proof element and, at the right edge, the fold of the subtrees below it."""
    return 2 * max(1, (size - 1).bit_length())


@pytest.mark.parametrize("size", SIZES)
def test_an_inclusion_proof_reads_at_most_two_nodes_per_level(size: int) -> None:
    rng = random.Random(size)
    for index in {0, size - 1, size // 2, *(rng.randrange(size) for _ in range(200))}:
        assert nodes_read(inclusion_ranges(index, size)) <= bound(size), (index, size)


@pytest.mark.parametrize("size", SIZES)
def test_a_consistency_proof_reads_at_most_two_nodes_per_level(size: int) -> None:
    rng = random.Random(size)
    for first in {1, size, size // 2 or 1, *(rng.randrange(1, size + 1) for _ in range(200))}:
        assert nodes_read(consistency_ranges(first, size)) <= bound(size), (first, size)


def test_the_bound_is_logarithmic_not_linear() -> None:
    assert bound(2**40 - 1) == 80 and bound(10_000_000) == 48
