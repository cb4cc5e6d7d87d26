"""Alerts on blocking and unblocking: ``blockproof alerts`` and the explorer's Atom feed.

- ``changes``: what changed since the last announcement (sans-IO): onset, update and
  resolution alerts, their ids and wording;
- ``subscriptions``: who wants which alerts where (``alerts.toml``, or the command line);
- ``ledger``: what was announced and delivered, kept in the store (SQLite);
- ``atom``, ``webhook``, ``mail``: the three ways out;
- ``feed``: the explorer's ``/feeds/events.atom``, from the current events alone;
- ``run``: one run of ``blockproof alerts``: compute, record as pending, deliver, mark.

See docs/alerts.md.
"""
