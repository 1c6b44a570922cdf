"""RFC 9162 Merkle proofs: the published transparency-dev/merkle vectors, and every proof of small trees built and checked."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from jpr_client.transparency.merkle import (
    EMPTY_ROOT,
    Appender,
    ProofError,
    build_proof,
    consistency_ranges,
    fold,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_nodes,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[3] / "docs" / "vectors" / "merkle.json").read_text(encoding="utf-8"))
TREE = VECTORS["rfc6962_tree"]


def hashes(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def reference_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH exactly as RFC 9162 2.1.1 writes it, recursively: the oracle for the iterative code."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


class Log:
    """A log as the registry keeps it: the node hashes `Appender` emitted, addressed by (level, index)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.leaves = [leaf_hash(f"{seed}:{i}".encode()) for i in range(size)]
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots = [EMPTY_ROOT]
        appender = Appender()
        for hashed in self.leaves:
            self.nodes.update({(level, index): h for level, index, h in appender.append(hashed)})
            self.roots.append(appender.root())

    def stored(self, level: int, index: int) -> bytes:
        return self.nodes[level, index]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return build_proof(inclusion_ranges(index, size), self.stored)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        return build_proof(consistency_ranges(size1, size2), self.stored)


SMALL = Log(64)


# --- the published vectors -------------------------------------------------------------


def test_the_empty_root_is_the_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == TREE["root_hashes"][0]


def test_leaf_and_node_hashes_are_the_rfc6962_reference_tree() -> None:
    level0 = [leaf_hash(bytes.fromhex(data)) for data in TREE["leaf_inputs"]]
    assert level0 == hashes(TREE["node_hashes"][0])
    for level in range(1, len(TREE["node_hashes"])):
        below = hashes(TREE["node_hashes"][level - 1])
        assert [node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)] == hashes(TREE["node_hashes"][level])


def test_roots_and_frontiers_of_every_prefix_of_the_reference_tree() -> None:
    leaves = hashes(TREE["node_hashes"][0])
    appender = Appender()
    for size in range(len(leaves) + 1):
        assert root(leaves[:size]).hex() == TREE["root_hashes"][size]
        frontier = [TREE["node_hashes"][level][index] for level, index in TREE["compact_trees"][size]]
        assert appender.size == size and [h.hex() for h in appender.frontier()] == frontier
        if size:
            assert [list(node) for node in range_nodes(0, size)] == TREE["compact_trees"][size]
        assert appender.root().hex() == TREE["root_hashes"][size]
        if size < len(leaves):
            appender.append(leaves[size])


def probe_name(probe: dict[str, Any]) -> str:
    return str(probe["source"])


@pytest.mark.parametrize("probe", VECTORS["inclusion"], ids=probe_name)
def test_inclusion_probes_of_transparency_dev(probe: dict[str, Any]) -> None:
    arguments = (bytes.fromhex(probe["leaf_hash"]), probe["index"], probe["size"], hashes(probe["proof"]), bytes.fromhex(probe["root"]))
    if probe["want_error"]:
        with pytest.raises(ProofError):
            verify_inclusion(*arguments)
    else:
        verify_inclusion(*arguments)


@pytest.mark.parametrize("probe", VECTORS["consistency"], ids=probe_name)
def test_consistency_probes_of_transparency_dev(probe: dict[str, Any]) -> None:
    arguments = (probe["size1"], probe["size2"], hashes(probe["proof"]), bytes.fromhex(probe["root1"]), bytes.fromhex(probe["root2"]))
    if probe["want_error"]:
        with pytest.raises(ProofError):
            verify_consistency(*arguments)
    else:
        verify_consistency(*arguments)


def test_the_happy_path_vectors_are_the_proofs_built_over_the_reference_tree() -> None:
    log = Log(0)
    log.leaves = hashes(TREE["node_hashes"][0])
    log.nodes = {(level, index): bytes.fromhex(h) for level, row in enumerate(TREE["node_hashes"]) for index, h in enumerate(row)}
    happy = [p for p in VECTORS["inclusion"] if p["desc"] == "happy path"]
    assert happy
    for probe in happy:
        assert [h.hex() for h in log.inclusion(probe["index"], probe["size"])] == probe["proof"]
    for probe in [p for p in VECTORS["consistency"] if p["desc"] == "happy path" and p["size1"] != p["size2"]]:
        assert [h.hex() for h in log.consistency(probe["size1"], probe["size2"])] == probe["proof"]


# --- every proof of every tree up to 64 leaves -----------------------------------------


def test_iterative_roots_equal_the_recursive_definition_up_to_64_leaves() -> None:
    for size in range(65):
        assert SMALL.roots[size] == reference_mth(SMALL.leaves[:size]) == root(SMALL.leaves[:size])


def test_every_proof_range_folds_into_its_merkle_tree_hash() -> None:
    for size in range(1, 65):
        ranges = [r for index in range(size) for r in inclusion_ranges(index, size)]
        ranges += [r for size1 in range(size) for r in consistency_ranges(size1, size)]
        for begin, end in set(ranges):
            assert fold([SMALL.stored(*node) for node in range_nodes(begin, end)]) == reference_mth(SMALL.leaves[begin:end])


def test_every_inclusion_proof_up_to_64_leaves_verifies() -> None:
    for size in range(1, 65):
        for index in range(size):
            verify_inclusion(SMALL.leaves[index], index, size, SMALL.inclusion(index, size), SMALL.roots[size])


def test_every_consistency_proof_up_to_64_leaves_verifies() -> None:
    for size2 in range(65):
        for size1 in range(size2 + 1):
            verify_consistency(size1, size2, SMALL.consistency(size1, size2), SMALL.roots[size1], SMALL.roots[size2])


def test_proofs_in_large_random_trees_verify() -> None:
    """A large tree's proofs need only the nodes on their paths: an Appender of size 2**40 is a frontier."""
    chooser = random.Random(9162)
    for _ in range(20):
        size = chooser.randrange(2, 1 << 40)
        index = chooser.randrange(size)
        size1 = chooser.randrange(1, size)
        for ranges in (inclusion_ranges(index, size), consistency_ranges(size1, size)):
            for begin, end in ranges:
                nodes = range_nodes(begin, end)
                assert nodes[0][1] << nodes[0][0] == begin
                assert sum(1 << level for level, _ in nodes) == end - begin
                assert all(b[0] < a[0] for a, b in zip(nodes, nodes[1:]))
    for size in (65, 100, 127, 128, 129, 1000):
        log = Log(size, seed=size)
        for index in chooser.sample(range(size), 10):
            verify_inclusion(log.leaves[index], index, size, log.inclusion(index, size), log.roots[size])
        for size1 in chooser.sample(range(size + 1), 10):
            verify_consistency(size1, size, log.consistency(size1, size), log.roots[size1], log.roots[size])


def test_an_appender_restarted_from_its_frontier_continues_the_same_tree() -> None:
    first = Appender()
    for hashed in SMALL.leaves[:37]:
        first.append(hashed)
    restarted = Appender(first.size, first.frontier())
    for hashed in SMALL.leaves[37:]:
        assert restarted.append(hashed) == first.append(hashed)
    assert restarted.root() == first.root() == SMALL.roots[64]


# --- tampering fails --------------------------------------------------------------------


def flip(proof: list[bytes], position: int) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ 1]) + changed[position][1:]
    return changed


def test_tampered_inclusion_proofs_fail() -> None:
    for size in range(1, 33):
        for index in range(size):
            proof, leaf, tree_root = SMALL.inclusion(index, size), SMALL.leaves[index], SMALL.roots[size]
            tampered: list[tuple[bytes, int, int, list[bytes], bytes]] = [
                (leaf, index, size, proof + [leaf], tree_root),
                (SMALL.leaves[(index + 1) % 64], index, size, proof, tree_root),
                (leaf, index, size, proof, SMALL.roots[size + 1]),
            ]
            if index + 1 < size:
                tampered.append((leaf, index + 1, size, proof, tree_root))
            if proof:
                tampered += [(leaf, index, size, proof[:-1], tree_root)]
                tampered += [(leaf, index, size, flip(proof, p), tree_root) for p in range(len(proof))]
            for arguments in tampered:
                with pytest.raises(ProofError):
                    verify_inclusion(*arguments)


def test_tampered_consistency_proofs_fail() -> None:
    for size2 in range(2, 33):
        for size1 in range(1, size2):
            proof, root1, root2 = SMALL.consistency(size1, size2), SMALL.roots[size1], SMALL.roots[size2]
            tampered = [
                (size1, size2, proof + [root1], root1, root2),
                (size1, size2, proof[:-1], root1, root2),
                (size1, size2, proof, SMALL.roots[size1 - 1], root2),
                (size1, size2, proof, root1, SMALL.roots[size2 + 1]),
                (size1, size2, proof, root2, root1),
            ]
            tampered += [(size1, size2, flip(proof, p), root1, root2) for p in range(len(proof))]
            for arguments in tampered:
                with pytest.raises(ProofError):
                    verify_consistency(*arguments)


def test_refusals_say_what_is_wrong() -> None:
    with pytest.raises(ProofError, match="has 3 hashes, this one has 2"):
        verify_inclusion(SMALL.leaves[0], 0, 8, SMALL.inclusion(0, 8)[:2], SMALL.roots[8])
    with pytest.raises(ProofError, match="not in a tree of size 8"):
        verify_inclusion(SMALL.leaves[0], 8, 8, [], SMALL.roots[8])
    with pytest.raises(ProofError, match="is 31 bytes"):
        verify_inclusion(SMALL.leaves[0][:31], 0, 1, [], SMALL.roots[1])
    with pytest.raises(ProofError, match="does not lead to root2"):
        verify_consistency(3, 7, SMALL.consistency(3, 7), SMALL.roots[3], SMALL.roots[6])
    with pytest.raises(ProofError, match="the log forked"):
        verify_consistency(5, 5, [], SMALL.roots[5], SMALL.roots[4])
    with pytest.raises(ProofError, match="EMPTY_ROOT"):
        verify_consistency(0, 5, [], SMALL.roots[1], SMALL.roots[5])


def test_building_refuses_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="0 <= index < size"):
        inclusion_ranges(3, 3)
    with pytest.raises(ValueError, match="size1 <= size2"):
        consistency_ranges(4, 3)
    with pytest.raises(ValueError, match="not one a proof uses"):
        range_nodes(1, 4)
    with pytest.raises(ValueError, match="frontier of 2 hashes"):
        Appender(3, [EMPTY_ROOT])
    with pytest.raises(ValueError, match="at least one hash"):
        fold([])
