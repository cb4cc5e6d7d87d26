"""The lab on the real kernel: network namespaces, nftables, tc, and the unmodified probe.

``blockproof lab run --backend kernel SCENARIO`` builds the scenario's internet from
three network namespaces (probe, censor router, internet), enforces the censor's
rules with nftables, tc and a transparent DPI proxy, and runs ``blockproof run``
inside the probe's namespace. See docs/lab.md, "The kernel backend", and the
modules: ``plan`` (pure: names, addresses, rulesets), ``shell`` (commands, cleanup,
janitor), ``world`` and ``censorbox`` (the servers), ``daemon`` (their process
life), ``run`` (the orchestration).
"""
