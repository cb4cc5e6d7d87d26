"""The collector's state: durable log + Merkle tree + indexes, behind one async ``submit``.

Theory of operation
-------------------
``submit(admitted)`` turns an admitted measurement into a log record
(``<header JSON>\\n<canonical measurement>``) and hands it to the group
committer (``segments.GroupCommitter``). The committer writes whole batches and
fsyncs once per batch; only then, on the event loop thread and in log order,
``_on_durable`` appends each record's leaf to the Merkle tree, indexes it (leaf
hash -> ordinal, uid -> ordinal) and signs one new tree head for the batch.
Only after that do the submitters' futures resolve, so every receipt handed
out refers to a record that is on disk and inside a signed tree head.

The record's ordinal in the segment log *is* its leaf index, which is why the
tree is rebuilt from the log at start-up and why nothing but the committer
appends to the log. After SIGKILL the log's recovery cuts a torn tail (records
nobody was told about); everything acknowledged was fsynced before it was
acknowledged, so it is found again, in the same order, with the same leaf
index, and every tree head signed before the crash is a prefix of the rebuilt
tree (checkable with a consistency proof).

Duplicates: the leaf hash is the identity of a measurement's content. A
resubmission of a logged measurement gets the stored uid and a fresh proof; two
simultaneous submissions of the same new measurement share one log record.

Memory: the indexes keep about 200 bytes per measurement (a few GB at ten
million); the Merkle tree about 64 bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blockproof.collector.admission import Admitted, measurement_uid
from blockproof.collector.segments import GroupCommitter, Position, Recovery, SegmentLog
from blockproof.custody.keys import load_or_create_key
from blockproof.custody.merkle import MerkleTree, leaf_hash
from blockproof.custody.proofs import Receipt, TreeHead, sign_tree_head

LOG_DIR = "log"
KEY_DIR = "keys"
LOG_KEY_FILE = "log-key.pem"  # the Ed25519 key that signs tree heads


@dataclass(frozen=True, slots=True)
class Stored:
    """One logged measurement as read back from the log."""

    ordinal: int
    uid: str
    received: str
    canonical: bytes


def split_record(payload: bytes) -> tuple[dict[str, str], bytes]:
    """A log record's header and canonical measurement."""
    head, _, canonical = payload.partition(b"\n")
    header = json.loads(head)
    return header, canonical


class Collector:
    """Owns the data directory. Create with ``await Collector.open(path)``."""

    def __init__(self, data_dir: Path, log: SegmentLog, key: Ed25519PrivateKey) -> None:
        self.data_dir = data_dir
        self._log = log
        self._key = key
        self._tree = MerkleTree()
        self._by_leaf: dict[bytes, int] = {}
        self._by_uid: dict[str, int] = {}
        self._uids: list[str] = []
        self._segment = array("I")
        self._offset = array("Q")
        self._length = array("I")
        self._pending: dict[bytes, asyncio.Future[Position]] = {}
        self._written: dict[int, tuple[str, bytes]] = {}  # id(record) -> (uid, leaf hash)
        self._committer: GroupCommitter | None = None
        self._head: TreeHead | None = None
        self._head_json: dict[str, Any] | None = None  # the current head's JSON, once asked
        self.recovery: Recovery | None = None  # what opening the log found and repaired

    # ----------------------------------------------------------------- life

    @classmethod
    async def open(cls, data_dir: Path) -> Collector:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: data_dir.mkdir(parents=True, exist_ok=True))
        key = load_or_create_key(data_dir / KEY_DIR, filename=LOG_KEY_FILE).private_key
        log, recovery = await loop.run_in_executor(None, SegmentLog.open, data_dir / LOG_DIR)
        collector = cls(data_dir, log, key)
        collector.recovery = recovery
        await loop.run_in_executor(None, collector._rebuild)
        collector._head = collector._sign_head()
        collector._committer = GroupCommitter(log, before_ack=collector._on_durable)
        return collector

    async def aclose(self) -> None:
        if self._committer is not None:
            await self._committer.aclose()
        self._log.close()

    def _rebuild(self) -> None:
        hashes: list[bytes] = []
        for position, payload in self._log.records():
            header, canonical = split_record(payload)
            leaf = leaf_hash(canonical)
            hashes.append(leaf)
            self._index(position, header["uid"], leaf)
        self._tree = MerkleTree.from_leaf_hashes(hashes)

    def _index(self, position: Position, uid: str, leaf: bytes) -> None:
        ordinal = len(self._uids)
        assert position.ordinal == ordinal, "the log and its index disagree"
        self._by_leaf[leaf] = ordinal
        self._by_uid[uid] = ordinal
        self._uids.append(uid)
        self._segment.append(position.segment)
        self._offset.append(position.offset)
        self._length.append(position.length)

    def _on_durable(self, batch: Sequence[tuple[Position, bytes]]) -> None:
        """Runs on the loop after each batch's fsync, before any of its submitters resume."""
        for position, payload in batch:
            known = self._written.get(id(payload))
            if known is None:  # not from submit(): parse it
                header, canonical = split_record(payload)
                known = (header["uid"], leaf_hash(canonical))
            uid, leaf = known
            self._index(position, uid, leaf)
            self._tree.append(leaf)
        self._head = self._sign_head()
        self._head_json = None

    def _sign_head(self) -> TreeHead:
        size = len(self._tree)
        return sign_tree_head(size, self._tree.root(size), int(time.time() * 1000), self._key)

    # --------------------------------------------------------------- writes

    async def submit(self, admitted: Admitted) -> tuple[int, bool]:
        """Log ``admitted`` (once): its leaf index, and whether it was logged before.

        Returns only once the record is fsynced and inside the current tree head.
        A submitter that goes away (cancelled) does not cancel the write.
        """
        leaf = admitted.leaf_hash
        ordinal = self._by_leaf.get(leaf)
        if ordinal is not None:
            return ordinal, True
        pending = self._pending.get(leaf)
        if pending is not None:  # the same measurement is being written right now
            return (await asyncio.shield(pending)).ordinal, True
        return (await asyncio.shield(self._enqueue(admitted))).ordinal, False

    async def submit_many(self, items: Sequence[Admitted]) -> list[tuple[int, bool]]:
        """``submit`` for each of ``items`` (in order), sharing one wait for the disk.

        The records go to the committer together, so they normally land in one
        batch; returns once every one of them is durable and in the tree head.
        """
        answers: list[tuple[int, bool]] = [(-1, False)] * len(items)
        waits: list[tuple[int, asyncio.Future[Position], bool]] = []
        for i, admitted in enumerate(items):
            leaf = admitted.leaf_hash
            ordinal = self._by_leaf.get(leaf)
            if ordinal is not None:
                answers[i] = (ordinal, True)
                continue
            pending = self._pending.get(leaf)
            if pending is not None:
                waits.append((i, pending, True))
            else:
                waits.append((i, self._enqueue(admitted), False))
        if waits:
            # asyncio.wait, unlike awaiting the futures, never cancels them.
            await asyncio.wait({future for _, future, _ in waits})
        for i, future, duplicate in waits:
            answers[i] = (future.result().ordinal, duplicate)
        return answers

    def _enqueue(self, admitted: Admitted) -> asyncio.Future[Position]:
        """Hand ``admitted``'s record to the committer (it is not logged nor pending)."""
        assert self._committer is not None, "the collector is not open"
        leaf = admitted.leaf_hash
        now = datetime.now(UTC)
        uid = measurement_uid(now, admitted.probe_cc, admitted.test_name, leaf)
        received = f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond:06d}Z"
        record = b'{"uid":"%s","received":"%s"}\n%s' % (
            uid.encode(),
            received.encode(),
            admitted.canonical,
        )
        future = self._committer.enqueue(record)
        self._pending[leaf] = future
        key = id(record)
        self._written[key] = (uid, leaf)

        def settled(_f: asyncio.Future[Position]) -> None:
            self._pending.pop(leaf, None)
            self._written.pop(key, None)

        future.add_done_callback(settled)
        return future

    # ---------------------------------------------------------------- reads

    def __len__(self) -> int:
        return len(self._uids)

    @property
    def tree_head(self) -> TreeHead:
        assert self._head is not None
        return self._head

    @property
    def log_id(self) -> str:
        return self.tree_head.log_id

    def ordinal_of(self, uid: str) -> int | None:
        return self._by_uid.get(uid)

    def receipt(self, ordinal: int, head: TreeHead | None = None) -> Receipt:
        head = head or self.tree_head
        return Receipt(
            measurement_uid=self._uids[ordinal],
            leaf_index=ordinal,
            leaf_hash=self._tree.leaf(ordinal),
            inclusion_proof=tuple(self._tree.inclusion_proof(ordinal, head.tree_size)),
            tree_head=head,
        )

    def receipt_json(
        self, ordinal: int, head: TreeHead | None = None, *, with_head: bool = True
    ) -> dict[str, Any]:
        """``receipt(ordinal, head).to_json()``, built directly (the submission hot path).

        ``with_head=False`` leaves the tree head out (a batch answer sends it once).
        """
        head = head or self.tree_head
        answer: dict[str, Any] = {
            "measurement_uid": self._uids[ordinal],
            "leaf_index": ordinal,
            "leaf_hash": self._tree.leaf(ordinal).hex(),
            "inclusion_proof": [
                h.hex() for h in self._tree.inclusion_proof(ordinal, head.tree_size)
            ],
        }
        if with_head:
            answer["tree_head"] = self.tree_head_json(head)
        return answer

    def tree_head_json(self, head: TreeHead | None = None) -> dict[str, Any]:
        """``head.to_json()`` (default: the current head), kept for the current head."""
        head = head or self.tree_head
        if head is not self._head:
            return head.to_json()
        if self._head_json is None:
            self._head_json = head.to_json()
        return self._head_json

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self._tree.consistency_proof(first, second)

    def read(self, ordinal: int) -> Stored:
        position = Position(
            ordinal, self._segment[ordinal], self._offset[ordinal], self._length[ordinal]
        )
        header, canonical = split_record(self._log.read(position))
        return Stored(ordinal, header["uid"], header["received"], canonical)

    def stored(self) -> Iterator[Stored]:
        """Every logged measurement in log order (streams from disk)."""
        for position, payload in self._log.records():
            header, canonical = split_record(payload)
            yield Stored(position.ordinal, header["uid"], header["received"], canonical)


def data_dir_lock(data_dir: Path) -> int:
    """Hold an exclusive lock on the data directory: one collector process per directory."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "collector.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        from blockproof.errors import ConfigError

        raise ConfigError(f"{data_dir}: another collector is using this data directory") from None
    return fd
