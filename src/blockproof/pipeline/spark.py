"""Starting Spark for the pipeline: ``analyze --engine spark`` and ``ingest --engine spark``.

``session(master)`` gives a SparkSession on ``master`` (``--spark-master``, else
``BLOCKPROOF_SPARK_MASTER``, else ``local[*]``): UTC session time, no UI, the driver
bound to loopback in local mode, executors running this Python (so they import the
same blockproof), ``BLOCKPROOF_SPARK_MEMORY`` for the driver (default 2g).
"""

from __future__ import annotations

import os
import sys
from typing import Any


class SparkUnavailable(RuntimeError):
    """pyspark is not installed, or Spark (its Java runtime) does not start."""


def master_url(spark_master: str | None) -> str:
    return spark_master or os.environ.get("BLOCKPROOF_SPARK_MASTER") or "local[*]"


def session(spark_master: str | None = None) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SparkUnavailable(
            "the Spark engine needs the [spark] extra: pip install 'blockproof[spark]'"
        ) from exc
    master = master_url(spark_master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master)
    if master.startswith("local"):
        # local mode: everything on loopback, never another interface
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    try:
        spark = (
            builder.appName("blockproof")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.memory", os.environ.get("BLOCKPROOF_SPARK_MEMORY", "2g"))
            .getOrCreate()
        )
    except Exception as exc:
        raise SparkUnavailable(f"cannot start Spark ({master}): {exc}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark
