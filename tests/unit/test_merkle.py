"""The transparency log's Merkle tree (custody.merkle) against RFC 9162 §2.1.

``Reference`` below is the RFC's recursive definitions (MTH, PATH, PROOF and
SUBPROOF) written out as literally as Python allows, slow and obviously right.
The compact tree must give the same roots and proofs for every size, index and
old size; every proof it makes must verify; and any damaged proof, or one
presented with the wrong index or size, must not. Known answers come from the
8-leaf tree of the Certificate Transparency test data (RFC 6962 and RFC 9162
use the same hashing, so the values are the same for both).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockproof.custody import merkle
from blockproof.custody.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# -- the reference: RFC 9162 §2.1, transcribed --------------------------------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k, "the largest power of two smaller than n" (n > 1), found the plain way."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF of RFC 9162 §2.1 over the entries D[0:n] themselves.

    D[lo:hi] is written as the pair (lo, hi). Subtree hashes are memoised so
    that asking for every proof of a 300-leaf tree stays cheap; nothing else
    is clever.
    """

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        """§2.1.1: MTH({}) = HASH(), MTH({d0}) = HASH(0x00 || d0), else split at k."""
        memo = self._memo.get((lo, hi))
        if memo is not None:
            return memo
        n = hi - lo
        if n == 0:
            result = _sha256(b"")
        elif n == 1:
            result = _sha256(b"\x00" + self.entries[lo])
        else:
            k = _largest_power_of_two_below(n)
            result = _sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
        self._memo[(lo, hi)] = result
        return result

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """§2.1.3.1: PATH(m, D[lo:hi]), with m counted from lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def inclusion(self, m: int, n: int) -> list[bytes]:
        return self.path(m, 0, n)

    def subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        """§2.1.4.1: SUBPROOF(m, D[lo:hi], b), with m counted from lo."""
        n = hi - lo
        if m == n:
            return [] if complete else [self.mth(lo, hi)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, complete), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(m, 0, n, True)


def path_sides(m: int, n: int) -> tuple[bool, ...]:
    """For each entry of PATH(m, D[n]), leaf level first: is that sibling on the left?"""
    if n == 1:
        return ()
    k = _largest_power_of_two_below(n)
    if m < k:
        return (*path_sides(m, k), False)
    return (*path_sides(m - k, n - k), True)


MAX_SIZE = 300
ENTRIES = [b"measurement %d" % i for i in range(MAX_SIZE)]  # all distinct
LEAVES = [_sha256(b"\x00" + entry) for entry in ENTRIES]
REFERENCE = Reference(ENTRIES)


def _appended(n: int) -> MerkleTree:
    tree = MerkleTree()
    for index, leaf in enumerate(LEAVES[:n]):
        assert tree.append(leaf) == index
    return tree


FULL = _appended(MAX_SIZE)  # read-only in every test: its earlier sizes are the other trees

sizes = st.integers(min_value=1, max_value=MAX_SIZE)
# Sizes, then an index / old size within them.
size_and_index = sizes.flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1)))
old_and_new = sizes.flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))
fast = settings(max_examples=100, deadline=None)

# -- the hash functions -------------------------------------------------------------------------


def test_hash_functions_are_rfc_9162s() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"abc") == _sha256(b"\x00abc")
    left, right = _sha256(b"l"), _sha256(b"r")
    assert node_hash(left, right) == _sha256(b"\x01" + left + right)
    assert node_hash(left, right) != node_hash(right, left)


# -- known answers: the CT test tree --------------------------------------------------------------

# The canonical 8-entry tree of the Certificate Transparency test data.
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
# Its roots for sizes 1..8 as published with the CT test data (RFC 6962 / RFC 9162
# reference implementations); each one is also recomputed by ``Reference`` below.
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# Audit paths from the same test data: (leaf index, tree size) -> path.
CT_PATHS = {
    (0, 1): [],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
# Consistency proofs from the same test data: (old size, new size) -> proof.
CT_PROOFS = {
    (1, 1): [],
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
CT_REFERENCE = Reference(CT_ENTRIES)
CT_TREE = MerkleTree.from_leaf_hashes(leaf_hash(entry) for entry in CT_ENTRIES)


@pytest.mark.parametrize(("size", "root"), sorted(CT_ROOTS.items()))
def test_known_roots(size: int, root: str) -> None:
    assert CT_REFERENCE.root(size).hex() == root
    assert CT_TREE.root(size).hex() == root
    assert MerkleTree.from_leaf_hashes(leaf_hash(e) for e in CT_ENTRIES[:size]).root().hex() == root


@pytest.mark.parametrize(("where", "path"), sorted(CT_PATHS.items()))
def test_known_audit_paths(where: tuple[int, int], path: list[str]) -> None:
    index, size = where
    assert [h.hex() for h in CT_REFERENCE.inclusion(index, size)] == path
    proof = CT_TREE.inclusion_proof(index, size)
    assert [h.hex() for h in proof] == path
    leaf = leaf_hash(CT_ENTRIES[index])
    assert verify_inclusion(leaf, index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("sizes", "proof"), sorted(CT_PROOFS.items()))
def test_known_consistency_proofs(sizes: tuple[int, int], proof: list[str]) -> None:
    old, new = sizes
    assert [h.hex() for h in CT_REFERENCE.consistency(old, new)] == proof
    made = CT_TREE.consistency_proof(old, new)
    assert [h.hex() for h in made] == proof
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, made)


def test_the_empty_tree() -> None:
    tree = MerkleTree()
    assert len(tree) == 0
    assert tree.root() == tree.root(0) == EMPTY_ROOT == Reference([]).root(0)
    assert FULL.root(0) == EMPTY_ROOT
    assert MerkleTree.from_leaf_hashes([]).root() == EMPTY_ROOT


# -- the compact tree equals the reference ---------------------------------------------------


def test_every_proof_of_small_trees_matches_the_reference() -> None:
    """Sizes 1..64, every index and every old size, on trees of exactly that size."""
    for n in range(1, 65):
        tree = _appended(n)
        root = REFERENCE.root(n)
        assert tree.root() == root
        for index in range(n):
            proof = tree.inclusion_proof(index)
            assert proof == REFERENCE.inclusion(index, n), (index, n)
            assert verify_inclusion(LEAVES[index], index, n, proof, root)
        for old in range(1, n + 1):
            proof = tree.consistency_proof(old)
            assert proof == REFERENCE.consistency(old, n), (old, n)
            assert verify_consistency(old, n, REFERENCE.root(old), root, proof)


@fast
@given(sizes)
def test_roots_and_all_audit_paths_match_the_reference(n: int) -> None:
    tree = _appended(n)
    root = REFERENCE.root(n)
    assert len(tree) == n
    assert tree.root() == tree.root(n) == FULL.root(n) == root
    for index in range(n):
        proof = tree.inclusion_proof(index)
        assert proof == FULL.inclusion_proof(index, n) == REFERENCE.inclusion(index, n)
        assert verify_inclusion(LEAVES[index], index, n, proof, root)
        assert root_from_inclusion(LEAVES[index], index, n, proof) == root


@fast
@given(old_and_new)
def test_consistency_proofs_match_the_reference(sizes: tuple[int, int]) -> None:
    old, new = sizes
    tree = _appended(new)
    proof = tree.consistency_proof(old)
    assert proof == tree.consistency_proof(old, new) == FULL.consistency_proof(old, new)
    assert proof == REFERENCE.consistency(old, new)
    assert verify_consistency(old, new, REFERENCE.root(old), REFERENCE.root(new), proof)
    assert (proof == []) == (old == new)


@fast
@given(st.lists(st.binary(max_size=48), max_size=MAX_SIZE), st.data())
def test_any_entries_bulk_and_one_by_one(entries: list[bytes], data: st.DataObject) -> None:
    """Arbitrary entries (duplicates, empty ones): every way of building gives the same tree."""
    leaves = [leaf_hash(entry) for entry in entries]
    one_by_one = MerkleTree()
    for leaf in leaves:
        one_by_one.append(leaf)
    bulk = MerkleTree.from_leaf_hashes(iter(leaves))
    chunked = MerkleTree()
    cut = 0
    while cut < len(leaves):
        step = data.draw(st.integers(1, 40))
        chunked.extend(leaves[cut : cut + step])
        if data.draw(st.booleans()) and cut + step < len(leaves):
            chunked.append(leaves[cut + step])
            step += 1
        cut += step
    root = Reference(entries).root(len(entries))
    for tree in (one_by_one, bulk, chunked):
        assert len(tree) == len(leaves)
        assert tree.root() == root
        assert tree._levels == one_by_one._levels  # the same stored subtrees, byte for byte
        assert all(tree.leaf(i) == leaf for i, leaf in enumerate(leaves))


def test_storage_is_under_two_hashes_per_leaf() -> None:
    """Level k holds n >> k hashes: 32 * (2n - popcount(n)) bytes in all."""
    for tree in (FULL, CT_TREE, _appended(257)):
        n = len(tree)
        held = [len(level) // 32 for level in tree._levels]
        assert held == [n >> k for k in range(n.bit_length())]
        assert sum(held) == 2 * n - n.bit_count() <= 2 * n


# -- work done: O(1) per append, O(log n) per root or proof ---------------------------------


class _CountingSha256:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes = b"") -> Any:
        self.calls += 1
        return hashlib.sha256(data)


@pytest.fixture
def count_hashes(monkeypatch: pytest.MonkeyPatch) -> _CountingSha256:
    """Counts the SHA-256 computations the tree makes (hashes, not bytes)."""
    counter = _CountingSha256()
    monkeypatch.setattr(merkle, "sha256", counter)
    return counter


def test_append_hashes_each_completed_subtree_once(count_hashes: _CountingSha256) -> None:
    tree = MerkleTree()
    for n in range(1, 3001):
        tree.append(LEAVES[n % MAX_SIZE])
        # Every perfect subtree of two or more leaves is hashed exactly once.
        assert count_hashes.calls == n - n.bit_count()


def test_roots_and_proofs_cost_logarithmic_hashing(count_hashes: _CountingSha256) -> None:
    n = (1 << 17) + 12_345  # 18 binary digits, several of them set
    tree = MerkleTree.from_leaf_hashes(_sha256(i.to_bytes(4, "big")) for i in range(n))
    budget = n.bit_length()
    for size in (n, n - 1, 99_999, 1 << 16, 3):
        count_hashes.calls = 0
        tree.root(size)
        assert count_hashes.calls < budget
        for index in (0, size // 3, size - 1):
            count_hashes.calls = 0
            tree.inclusion_proof(index, size)
            assert count_hashes.calls < budget
        for old in (1, size // 2, size - 1):
            count_hashes.calls = 0
            tree.consistency_proof(old, size)
            assert count_hashes.calls < budget


# -- damaged proofs fail ----------------------------------------------------------------------


def _flip(proof: list[bytes], position: int, bit: int) -> list[bytes]:
    damaged = list(proof)
    entry = bytearray(damaged[position])
    entry[bit // 8] ^= 1 << (bit % 8)
    damaged[position] = bytes(entry)
    return damaged


def _variants(proof: list[bytes], data: st.DataObject) -> Iterator[tuple[str, list[bytes]]]:
    """The proof with one bit flipped, one hash dropped, one hash added."""
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="position")
        bit = data.draw(st.integers(0, 255), label="bit")
        yield "bit flipped", _flip(proof, position, bit)
        yield "hash dropped", proof[:position] + proof[position + 1 :]
        yield "hash repeated", [*proof[: position + 1], proof[position], *proof[position + 1 :]]
    stranger = data.draw(st.binary(min_size=32, max_size=32), label="stranger")
    where = data.draw(st.integers(0, len(proof)), label="where")
    yield "hash appended", [*proof, stranger]
    yield "hash inserted", [*proof[:where], stranger, *proof[where:]]
    yield "hash truncated", [*proof, stranger[:31]]


@fast
@given(size_and_index, st.data())
def test_damaged_audit_paths_fail(where: tuple[int, int], data: st.DataObject) -> None:
    n, index = where
    root, leaf = REFERENCE.root(n), LEAVES[index]
    proof = FULL.inclusion_proof(index, n)
    assert verify_inclusion(leaf, index, n, proof, root)
    for what, damaged in _variants(proof, data):
        assert not verify_inclusion(leaf, index, n, damaged, root), what
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(_flip([leaf], 0, bit)[0], index, n, proof, root)
    assert not verify_inclusion(leaf, index, n, proof, _flip([root], 0, bit)[0])


@fast
@given(size_and_index, st.data())
def test_audit_paths_do_not_fit_another_index(where: tuple[int, int], data: st.DataObject) -> None:
    n, index = where
    root = REFERENCE.root(n)
    proof = FULL.inclusion_proof(index, n)
    other = data.draw(st.integers(-2, n + 2).filter(lambda j: j != index))
    assert not verify_inclusion(LEAVES[index], other, n, proof, root)
    if 0 <= other < n:
        assert not verify_inclusion(LEAVES[other], other, n, proof, root)


@fast
@given(size_and_index, st.integers(-2, MAX_SIZE + 2))
def test_audit_paths_and_another_tree_size(where: tuple[int, int], other: int) -> None:
    """A path proves nothing about another tree head; on its own it does not name its size.

    Against the root of a tree of the other size it always fails. Against its own
    root it fails too, unless the leaf's path has exactly the same shape (the
    same length, siblings on the same sides) in both sizes: then the RFC's
    algorithm does exactly the same hashing. That is why a verifier must take
    the size from the same signed tree head as the root.
    """
    n, index = where
    if other == n:
        return
    leaf, root = LEAVES[index], REFERENCE.root(n)
    proof = FULL.inclusion_proof(index, n)
    if 0 <= other <= MAX_SIZE:
        assert not verify_inclusion(leaf, index, other, proof, REFERENCE.root(other))
    same_shape = 0 <= index < other and path_sides(index, other) == path_sides(index, n)
    assert verify_inclusion(leaf, index, other, proof, root) == same_shape


def test_a_path_of_the_same_shape_in_a_larger_tree() -> None:
    """Leaf 0 has the shape (right, right) in trees of 3 and of 4 leaves (see above)."""
    proof = FULL.inclusion_proof(0, 3)
    assert path_sides(0, 3) == path_sides(0, 4) == (False, False)
    assert verify_inclusion(LEAVES[0], 0, 4, proof, REFERENCE.root(3))
    assert not verify_inclusion(LEAVES[0], 0, 4, proof, REFERENCE.root(4))


@fast
@given(old_and_new, st.data())
def test_damaged_consistency_proofs_fail(sizes: tuple[int, int], data: st.DataObject) -> None:
    old, new = sizes
    old_root, new_root = REFERENCE.root(old), REFERENCE.root(new)
    proof = FULL.consistency_proof(old, new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    for what, damaged in _variants(proof, data):
        assert not verify_consistency(old, new, old_root, new_root, damaged), what
    bit = data.draw(st.integers(0, 255))
    assert not verify_consistency(old, new, _flip([old_root], 0, bit)[0], new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip([new_root], 0, bit)[0], proof)


@fast
@given(old_and_new, st.integers(-2, MAX_SIZE), st.booleans())
def test_consistency_proofs_do_not_fit_other_tree_heads(
    sizes: tuple[int, int], other: int, change_old: bool
) -> None:
    """A proof for old -> new, presented with a tree head of another size (and its root)."""
    old, new = sizes
    proof = FULL.consistency_proof(old, new)
    other_root = REFERENCE.root(other) if other >= 0 else H
    if change_old and other != old:
        assert not verify_consistency(other, new, other_root, REFERENCE.root(new), proof)
    if not change_old and other != new:
        assert not verify_consistency(old, other, REFERENCE.root(old), other_root, proof)


def test_consistency_sizes_must_come_from_the_tree_heads() -> None:
    """As with audit paths, a proof of the same shape passes for other sizes with its own roots.

    PROOF(4, D[6]) = [MTH(D[4:6])] and the RFC's algorithm does the same hashing
    for the sizes 4 -> 7; only the sizes in the signed tree heads tell them apart.
    """
    proof = FULL.consistency_proof(4, 6)
    assert proof == [REFERENCE.mth(4, 6)]
    assert verify_consistency(4, 7, REFERENCE.root(4), REFERENCE.root(6), proof)
    assert not verify_consistency(4, 7, REFERENCE.root(4), REFERENCE.root(7), proof)


# -- arguments ----------------------------------------------------------------------------------

SEVEN = MerkleTree.from_leaf_hashes(LEAVES[:7])
H = LEAVES[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SEVEN.leaf(7), "no leaf 7"),
        (lambda: SEVEN.leaf(-1), "must not be negative"),
        (lambda: SEVEN.root(8), "larger than the tree"),
        (lambda: SEVEN.root(-1), "must not be negative"),
        (lambda: SEVEN.inclusion_proof(7), "no leaf 7 in a tree of size 7"),
        (lambda: SEVEN.inclusion_proof(5, 5), "no leaf 5 in a tree of size 5"),
        (lambda: SEVEN.inclusion_proof(0, 0), "no leaf 0 in a tree of size 0"),
        (lambda: SEVEN.inclusion_proof(-1), "must not be negative"),
        (lambda: SEVEN.inclusion_proof(0, 8), "larger than the tree"),
        (lambda: SEVEN.inclusion_proof(0, -1), "must not be negative"),
        (lambda: SEVEN.consistency_proof(0), "empty tree"),
        (lambda: SEVEN.consistency_proof(0, 0), "empty tree"),
        (lambda: SEVEN.consistency_proof(-1), "must not be negative"),
        (lambda: SEVEN.consistency_proof(5, 4), "old tree size 5 is larger than the new"),
        (lambda: SEVEN.consistency_proof(8), "old tree size 8 is larger than the new"),
        (lambda: SEVEN.consistency_proof(1, 8), "larger than the tree"),
        (lambda: SEVEN.consistency_proof(1, -1), "must not be negative"),
        (lambda: MerkleTree().append(b"x" * 31), "32 bytes, got 31"),
        (lambda: MerkleTree().append(b""), "32 bytes, got 0"),
        (lambda: MerkleTree.from_leaf_hashes([H, H, b"x" * 33]), "number 2 has 33 bytes"),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_edge_cases_the_rfc_defines() -> None:
    # SUBPROOF(n, D[n], true) is empty: equal sizes need only equal roots.
    assert SEVEN.consistency_proof(7) == SEVEN.consistency_proof(3, 3) == []
    assert verify_consistency(3, 3, SEVEN.root(3), SEVEN.root(3), [])
    assert SEVEN.inclusion_proof(0, 1) == []  # a one-leaf tree's root is its leaf
    assert SEVEN.root(1) == H
    assert verify_inclusion(H, 0, 1, [], H)
    assert SEVEN.consistency_proof(2) == SEVEN.consistency_proof(2, 7)
    assert SEVEN.inclusion_proof(3) == SEVEN.inclusion_proof(3, 7)
    assert SEVEN.leaf(6) == LEAVES[6]


def test_a_refused_extend_changes_nothing() -> None:
    tree = MerkleTree.from_leaf_hashes(LEAVES[:5])
    before = tree.root()
    with pytest.raises(ValueError, match="number 3 has 31 bytes"):
        tree.extend([*LEAVES[5:8], b"x" * 31])
    assert len(tree) == 5
    assert tree.root() == before
    tree.extend(LEAVES[5:8])
    assert tree.root() == REFERENCE.root(8)


def test_verifiers_say_false_to_malformed_inclusion_proofs() -> None:
    proof, root = SEVEN.inclusion_proof(2), SEVEN.root()
    leaf = LEAVES[2]
    assert verify_inclusion(leaf, 2, 7, proof, root)
    assert verify_inclusion(leaf, 2, 7, tuple(proof), root)  # any sequence
    cases: list[tuple[bytes, int, int, Sequence[bytes], bytes]] = [
        (leaf, 7, 7, proof, root),  # index == size
        (leaf, -1, 7, proof, root),
        (leaf, 0, 0, [], EMPTY_ROOT),  # nothing is in the empty tree
        (leaf, 2, -7, proof, root),
        (leaf[:31], 2, 7, proof, root),
        (leaf, 2, 7, proof, root + b"\x00"),
        (leaf, 2, 7, [*proof[:2], proof[2][:31]], root),
        (leaf, 2, 7, [*proof[:2], proof[2] + proof[2]], root),
        (leaf, 2, 7, [], root),
        (leaf, 2, 7, proof * 500, root),  # long: refused after log2(size) + 1 entries
        (leaf, 2, 1 << 70, proof, root),
    ]
    for case in cases:
        assert verify_inclusion(*case) is False, case[1:3]
        if len(case[4]) == 32:  # the root is not root_from_inclusion's business
            with pytest.raises(ValueError):
                root_from_inclusion(*case[:4])


def test_verifiers_say_false_to_malformed_consistency_proofs() -> None:
    old, new = SEVEN.root(3), SEVEN.root(7)
    proof = SEVEN.consistency_proof(3, 7)
    assert verify_consistency(3, 7, old, new, proof)
    assert verify_consistency(4, 7, SEVEN.root(4), new, SEVEN.consistency_proof(4))
    cases: list[tuple[int, int, bytes, bytes, Sequence[bytes]]] = [
        (0, 7, EMPTY_ROOT, new, []),  # no proof is defined from the empty tree
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
        (-1, 7, old, new, proof),
        (3, -7, old, new, proof),
        (7, 3, new, old, proof),  # the wrong way round
        (3, 7, old, new, []),  # RFC step 1
        (4, 7, SEVEN.root(4), new, []),
        (3, 3, old, old, proof),  # equal sizes: the proof must be empty...
        (3, 3, old, new, []),  # ...and the roots equal
        (3, 7, old[:31], new, proof),
        (3, 7, old, new + b"\x00", proof),
        (3, 7, old, new, [proof[0][:31], *proof[1:]]),
        (3, 7, old, new, [*proof[:-1], proof[-1] + b"\x00"]),
        (3, 7, old, new, proof * 500),
        (3, 1 << 70, old, new, proof),
    ]
    for case in cases:
        assert verify_consistency(*case) is False, case[:2]


# -- speed ----------------------------------------------------------------------------------------


def test_two_hundred_thousand_appends_and_a_thousand_proofs() -> None:
    """Not a benchmark: a generous bound that only a wrong complexity would miss."""
    n = 200_000
    leaves = [_sha256(i.to_bytes(4, "big")) for i in range(n)]
    started = time.perf_counter()
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    appended = time.perf_counter()
    root = tree.root()
    indices = range(0, n, n // 1000)
    proofs = [tree.inclusion_proof(index, n) for index in indices]
    proved = time.perf_counter()
    assert all(
        verify_inclusion(leaves[i], i, n, proof, root)
        for i, proof in zip(indices, proofs, strict=True)
    )
    print(
        f"{n} appends {appended - started:.2f} s, "
        f"{len(proofs)} inclusion proofs {proved - appended:.3f} s"
    )
    assert proved - started < 20
