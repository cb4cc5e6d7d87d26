"""Per-measurement verdicts: rules kept as data, blockpage fingerprints, app-test scoring."""
