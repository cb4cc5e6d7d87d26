"""The analysis pipeline: store, ingest, cells, change points, events (DuckDB or Spark)."""
