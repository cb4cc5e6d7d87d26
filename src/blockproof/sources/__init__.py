"""Public measurement data brought onto local disk, ready for ``blockproof ingest``.

- ``ooni_bucket``: sans-IO: which prefixes of OONI's public bucket to list, which of the
  listed files to take (JSON lines, or postcans where only those exist), the plan that
  compares the listing with what is on disk, the manifest, the retry delays;
- ``postcan``: reading OONI's postcans (tarballs of the probes' submissions) as
  measurement JSON lines, and converting one to ``.jsonl.gz``;
- ``s3``: the thin shell over the object-store client (listing, streaming a download);
- ``fetch``: the runner: lists in parallel, plans, downloads with bounded concurrency
  and retries, writes each file atomically, keeps the manifest, reports progress
  through a callback.

A layer beside ``pipeline``: it may import ``model``, ``codec`` and the leaf modules,
never the network stack of the probe (``netx``, ``experiments``, ``probe``, ``lab``)
nor click and rich.
"""
