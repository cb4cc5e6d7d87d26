"""Chain of custody: what makes a measurement evidence, shared by probe, collector and pipeline.

- ``signing``: Ed25519 signatures over a measurement's canonical JSON (RFC 8785), kept in
  its ``x_`` keys;
- ``keys``: a signing key on disk, created once, atomically and privately (the probe's,
  and the collector's log key);
- ``merkle``: the RFC 9162 Merkle tree, inclusion and consistency proofs;
- ``proofs``: signed tree heads and the receipts the collector gives for each measurement;
- ``verify``: ``blockproof verify``, every check of a measurement and its receipt, offline.

Nothing here does network I/O; the probe and the collector both build on it, and neither
imports the other.
"""
