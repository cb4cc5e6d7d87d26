"""The transparency log's Merkle tree: RFC 9162 hashes, proofs and their verification (sans-IO).

Every accepted measurement is a leaf of an append-only Merkle tree hashed as in
Certificate Transparency (RFC 6962, revised as RFC 9162 §2.1)::

    leaf hash   = SHA-256(0x00 || entry)
    node hash   = SHA-256(0x01 || left || right)
    MTH({})     = SHA-256("")                     (the empty tree)
    MTH(D[n])   = NODE(MTH(D[0:k]), MTH(D[k:n]))  k = largest power of two < n

The tree a log of ``n`` leaves describes is therefore fixed by ``n`` alone: it is
not "balanced", its left part is always the largest *perfect* subtree (a power of
two of leaves) and the rest hangs on the right. Three things follow from it:

- the **root** of ``n`` leaves (§2.1.1) is the hash of the perfect subtrees given
  by the binary digits of ``n``, folded right to left. For n = 6 (binary 110) the
  leaves split as [0, 4) + [4, 6), and ``MTH(D[6]) = NODE(P[0:4], P[4:6])``;
- an **inclusion proof** PATH(m, D[n]) (§2.1.3.1) is the list of sibling hashes on
  the way from leaf ``m`` up to the root, leaf level first. Folding them onto the
  leaf hash gives the root back (§2.1.3.2);
- a **consistency proof** PROOF(m, D[n]) (§2.1.4.1) holds the few subtree hashes
  from which both the old root (size ``m``) and the new root (size ``n``) can be
  recomputed, which shows that the first ``m`` leaves were not changed (§2.1.4.2).

Layout
------
Every hash any of these needs is either a perfect, aligned subtree (2**k leaves
starting at a multiple of 2**k) or is folded from O(log n) of them. Such subtrees
never change once their last leaf is in, so ``MerkleTree`` keeps exactly those and
nothing else, each level in one flat ``bytearray`` of 32-byte hashes::

    level 0: L0 L1 L2 L3 L4 L5        the leaf hashes (6 leaves)
    level 1: N01  N23  N45            entry i covers leaves [2i, 2i + 2)
    level 2: N0123                    entry i covers leaves [4i, 4i + 4)

Level ``k`` holds ``n >> k`` entries, so the whole tree takes less than
2 * 32 * n = 64 bytes per leaf, with no Python object per hash: a million leaves
are about 64 MB. Roots and proofs for any *earlier* size are available too,
because a smaller tree's perfect subtrees are all among the stored ones.

Complexity (n leaves, hashes counted as SHA-256 calls)
-----------------------------------------------------
- ``append``: amortised 1 node hash (one per level the new leaf completes;
  at most log2 n for one call), O(1) amortised bytearray growth;
- ``from_leaf_hashes`` / ``extend``: n - 1 node hashes in all, level by level;
- ``root(size)``: at most log2(size) node hashes, folding the stored subtrees
  picked by the binary digits of ``size``;
- ``inclusion_proof`` and ``consistency_proof``: O(log n) look-ups plus at most
  log2 n node hashes (only the right edge of a non-power-of-two tree is folded);
- the verifiers: one node hash per proof entry, and they stop after
  log2(size) + 1 entries whatever the proof holds, so a hostile proof costs little.

The verifiers (``verify_inclusion``, ``root_from_inclusion``,
``verify_consistency``) are plain functions of hashes and sizes: anyone holding a
tree head and a proof can run them offline, with no copy of the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

EMPTY_ROOT = sha256(b"").digest()
"""MTH({}), the root of the tree with no leaves: SHA-256 of the empty string (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_RANGE_CACHE = 1 << 16  # remembered hashes of non-perfect ranges (about 6 MB at most)


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || data).

    The 0x00 prefix (0x01 for interior nodes) keeps a leaf from ever being
    passed off as an interior node, or the reverse (second-preimage resistance).
    """
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right).digest()


def _split(width: int) -> int:
    """k, the largest power of two smaller than ``width`` (``width >= 2``), as in RFC 9162."""
    return 1 << ((width - 1).bit_length() - 1)


def _bad_hash(value: bytes) -> bool:
    return len(value) != HASH_SIZE


def _check_count(value: int, what: str) -> int:
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over leaf hashes, kept as perfect subtrees.

    The tree stores leaf *hashes* (see ``leaf_hash``): what a leaf holds, and how
    it is made canonical, is the caller's business. ``self._levels[k]`` is a flat
    ``bytearray`` of the ``len(self) >> k`` hashes of the perfect subtrees of
    ``2**k`` leaves, the ``i``-th one covering leaves ``[i * 2**k, (i + 1) * 2**k)``.

    Sizes and indices are plain counts: a negative one is refused, never taken
    to count from the end as Python sequences do.
    """

    __slots__ = ("_levels", "_ranges", "_size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self._ranges: dict[tuple[int, int], bytes] = {}  # see _range_hash

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        """A tree holding ``hashes`` as its leaves, built level by level.

        The same tree as appending them one by one, but each level is hashed in
        one tight loop over contiguous bytes, which is what reopening a log of
        a million measurements wants.
        """
        tree = cls()
        tree.extend(hashes)
        return tree

    def __len__(self) -> int:
        """How many leaves the tree holds (its tree size)."""
        return self._size

    def __repr__(self) -> str:
        return f"<MerkleTree size={self._size}>"

    # -- growing ---------------------------------------------------------------

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf (its 32-byte hash) and return its index.

        The new leaf completes a perfect subtree at every level where its index
        has a 1 bit, counting from the bottom: index 5 (101) completes [4, 6)
        only; index 7 (111) completes [6, 8), [4, 8) and [0, 8). Each is hashed
        from the last two entries of the level below and stored; on average
        that is one node hash per append.
        """
        if _bad_hash(leaf_hash):
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, got {len(leaf_hash)}")
        levels = self._levels
        index = self._size
        levels[0] += leaf_hash
        self._size = index + 1
        position, level = index, 0
        while position & 1:
            parent = sha256(_NODE_PREFIX + levels[level][-2 * HASH_SIZE :]).digest()
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent
            position >>= 1
        return index

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append every leaf hash of ``hashes``, in order, hashing level by level.

        All of ``hashes`` is checked before the tree changes: on a ValueError the
        tree is as it was.
        """
        items = hashes if isinstance(hashes, list | tuple) else list(hashes)
        if not items:
            return
        if set(map(len, items)) != {HASH_SIZE}:
            position, item = next((p, h) for p, h in enumerate(items) if _bad_hash(h))
            raise ValueError(f"leaf hash number {position} has {len(item)} bytes, not {HASH_SIZE}")
        levels = self._levels
        levels[0] += b"".join(items)
        self._size += len(items)
        pair = 2 * HASH_SIZE
        level = 0
        while True:
            below = levels[level]
            wanted = len(below) // pair
            if level + 1 == len(levels):
                if wanted == 0:
                    return
                levels.append(bytearray())
            above = levels[level + 1]
            have = len(above) // HASH_SIZE
            if have == wanted:
                # Nothing new here, so nothing new above either.
                return
            # Entries have..wanted-1 of the level above, from contiguous pairs below.
            chunk = bytes(below[have * pair : wanted * pair])
            above += b"".join(
                [
                    sha256(_NODE_PREFIX + chunk[start : start + pair]).digest()
                    for start in range(0, len(chunk), pair)
                ]
            )
            level += 1

    # -- reading ---------------------------------------------------------------

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index`` (0 <= index < len(self))."""
        _check_count(index, "a leaf index")
        if index >= self._size:
            raise ValueError(f"no leaf {index}: the tree has {self._size} leaves")
        start = index * HASH_SIZE
        return bytes(self._levels[0][start : start + HASH_SIZE])

    def _tree_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        _check_count(size, "a tree size")
        if size > self._size:
            raise ValueError(f"tree size {size} is larger than the tree ({self._size} leaves)")
        return size

    def _subtree(self, level: int, start: int) -> bytes:
        """The stored hash of the perfect subtree of 2**level leaves from leaf ``start``."""
        offset = (start >> level) * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a subtree that occurs in RFC 9162's recursion.

        Such a range (``start < end``) begins at a multiple of the smallest power
        of two >= its width, so it splits into stored perfect subtrees following
        the binary digits of its width, largest first; its hash is those folded
        from the right: MTH = NODE(P1, NODE(P2, ... NODE(Pj-1, Pj))).
        """
        width = end - start
        if width & (width - 1) == 0:  # a perfect subtree: stored as it is
            return self._subtree(width.bit_length() - 1, start)
        cached = self._ranges.get((start, end))
        if cached is not None:
            return cached
        parts: list[bytes] = []
        position = start
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                parts.append(self._subtree(level, position))
                position += 1 << level
        result = parts.pop()
        while parts:
            result = sha256(_NODE_PREFIX + parts.pop() + result).digest()
        # The hash of a fixed range of an append-only tree never changes, and the
        # proofs handed out together (one batch, one tree head) share their right
        # edge: remember recent ones.
        if len(self._ranges) >= _RANGE_CACHE:
            self._ranges.clear()
        self._ranges[(start, end)] = result
        return result

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[size]): the root of the first ``size`` leaves (default: all of them).

        ``root(0)`` is ``EMPTY_ROOT``. Any earlier size can be asked for: an
        append-only tree keeps every earlier tree inside it.
        """
        n = self._tree_size(size)
        if n == 0:
            return EMPTY_ROOT
        return self._range_hash(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1): leaf ``index``'s audit path.

        The sibling hashes from the leaf up to the root, leaf level first, in
        the tree of the first ``size`` leaves (default: all). A tree of one leaf
        has the empty path. Raises ValueError unless 0 <= index < size <= len(self).
        """
        n = self._tree_size(size)
        _check_count(index, "a leaf index")
        if index >= n:
            raise ValueError(f"no leaf {index} in a tree of size {n}")
        # Walk down from the root, as the RFC's recursion does, noting at each
        # split the hash of the half that does not hold the leaf; the path lists
        # them the other way round (innermost first).
        siblings: list[bytes] = []
        start, end = 0, n
        while end - start > 1:
            middle = start + _split(end - start)
            if index < middle:
                siblings.append(self._range_hash(middle, end))
                end = middle
            else:
                siblings.append(self._range_hash(start, middle))
                start = middle
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1): new_size extends old_size.

        ``new_size`` defaults to the whole tree. Returns:

        - for 0 < old_size < new_size, the RFC's proof (never empty);
        - for old_size == new_size (> 0), the empty list: SUBPROOF(n, D[n], true)
          is empty, and a verifier only has to see that the two roots are equal.

        Raises ValueError for old_size == 0 (the RFC defines proofs for
        0 < old_size only: the empty tree is a prefix of every tree and there
        is nothing to prove), for old_size > new_size, for new_size > len(self),
        and for negative sizes.
        """
        n = self._tree_size(new_size)
        m = _check_count(old_size, "the old tree size")
        if m == 0:
            raise ValueError(
                "no consistency proof from the empty tree (old size 0): RFC 9162 defines "
                "them for 0 < old size; every tree extends the empty one"
            )
        if m > n:
            raise ValueError(f"old tree size {m} is larger than the new tree size {n}")
        # SUBPROOF(m, D[start:end], complete), unrolled from the root down.
        # ``complete`` stays true while D[start:end] is still a prefix of the old
        # tree that the verifier's old root covers by itself.
        proof: list[bytes] = []
        start, end, complete = 0, n, True
        while m - start != end - start:
            middle = start + _split(end - start)
            if m <= middle:
                proof.append(self._range_hash(middle, end))
                end = middle
            else:
                proof.append(self._range_hash(start, middle))
                start = middle
                complete = False
        if not complete:
            # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's last subtree.
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from leaf ``index`` of a tree of ``size`` leaves.

    RFC 9162 §2.1.3.2 steps 1 to 5, short of the final comparison with a root.
    ``fn`` is the leaf's index and ``sn`` the last index, both shifted right one
    level per step: where ``fn`` is odd, or equals ``sn`` (the node is the last
    one on its level and has no right sibling, so skip the levels where it is
    simply carried up), the proof hash goes on the left; otherwise on the right.

    Raises ValueError if the proof cannot belong to such a tree: index out of
    range, a hash that is not 32 bytes, or a proof too long or too short.
    """
    if _bad_hash(leaf_hash):
        raise ValueError(f"the leaf hash has {len(leaf_hash)} bytes, not {HASH_SIZE}")
    if index < 0 or size < 0 or index >= size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn = index, size - 1
    result = leaf_hash
    for entry in proof:
        if sn == 0:
            raise ValueError("the inclusion proof is longer than the tree is deep")
        if _bad_hash(entry):
            raise ValueError(f"an inclusion proof hash has {len(entry)} bytes, not {HASH_SIZE}")
        if fn & 1 or fn == sn:
            result = sha256(_NODE_PREFIX + entry + result).digest()
            # A left child that is the last node of its level has no sibling
            # until the level where it becomes a right child (or the top).
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = sha256(_NODE_PREFIX + result + entry).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``index`` (hash ``leaf_hash``) in the tree (``size``, ``root``).

    RFC 9162 §2.1.3.2. False, never an exception, for anything malformed: an
    index outside [0, size), hashes that are not 32 bytes, a proof of the wrong
    length. Only arguments of the wrong type (a str for a hash) raise.

    The size must come from the same signed tree head as the root: the proof
    carries no size of its own, and trees of different sizes can give a leaf
    audit paths of the same shape.
    """
    if _bad_hash(root):
        return False
    try:
        return root_from_inclusion(leaf_hash, index, size, proof) == root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows that the tree (new_size, new_root) extends (old_size, old_root).

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. For old_size == new_size
    the proof must be empty and the roots equal (what ``consistency_proof``
    returns for that case). Everything else is False, never an exception:
    old_size == 0 (no proof is defined for the empty tree), old_size > new_size,
    negative sizes, hashes that are not 32 bytes, a proof of the wrong length.

    How it works: the proof starts from the largest perfect subtree the two
    trees share on the old tree's right edge (the old root itself when old_size
    is a power of two, and then left out of the proof). From there, ``fr``
    rebuilds the old root and ``sr`` the new one: a hash on the left of the
    path goes into both, a hash on the right only into the new one, since it
    covers leaves the old tree does not have.
    """
    if _bad_hash(old_root) or _bad_hash(new_root):
        return False
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    # Step 1: an empty proof cannot show anything for old_size < new_size.
    if len(proof) == 0:
        return False
    # Step 2: when old_size is a power of two the old tree is itself a perfect
    # subtree of the new one, and its root is the proof's implicit first hash.
    entries = iter(proof)
    if old_size & (old_size - 1) == 0:
        seed = old_root
    else:
        seed = next(entries)
        if _bad_hash(seed):
            return False
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4: climb to the top of the perfect subtree the seed hash stands for.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = seed
    # Step 6.
    for entry in entries:
        if sn == 0:
            return False
        if _bad_hash(entry):
            return False
        if fn & 1 or fn == sn:
            fr = sha256(_NODE_PREFIX + entry + fr).digest()
            sr = sha256(_NODE_PREFIX + entry + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(_NODE_PREFIX + sr + entry).digest()
        fn >>= 1
        sn >>= 1
    # Step 7.
    return sn == 0 and fr == old_root and sr == new_root
