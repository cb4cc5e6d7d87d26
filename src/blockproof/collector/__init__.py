"""The collector: receives measurements, keeps them durably, and proves it.

Submission API (OONI bk-003 plus a batch endpoint) -> validation -> durable
append-only segment log (group commit) -> transparency log (RFC 9162 Merkle
tree with signed tree heads, inclusion and consistency proofs).
"""
