"""The `spark` batch engine: the same pyfunc model as serving, applied by `mlflow.pyfunc.spark_udf`.

Spark reads the input (line numbers kept), parses each record with the local engine's parser,
drops documents already in the output (broadcast anti-join) and duplicate ids, and scores the
rest in line order across `partitions_per_core x default parallelism` partitions. Results and
failures are staged as Parquet next to OUTPUT and then streamed by the driver through the local
engine's `ResultWriter`, so both engines write the same rows, errors file and resume state.

OUTPUT and its staging folder must be on a file system the driver and the executors share (true
for `local[*]`; on a cluster, a shared mount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from inference.batch import (
    ANALYZE,
    INPUT_FIELDS,
    PARSE,
    BatchError,
    BatchStats,
    ResultWriter,
    batch_config,
    error_row,
    file_format,
    parse_line,
    raw_doc_id,
    pipeline_dir,
    result_row,
)

PARSED_SCHEMA = "line long, doc_id string, text string, published string, lang string, error string"


def _require_pyspark() -> None:
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise BatchError("the spark engine needs pyspark: pip install 'quote-stance[spark]' (and Java 17+)")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise BatchError("the spark engine needs Java 17+ (java on PATH or JAVA_HOME)")


def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None):
    """A SparkSession whose Python workers run this interpreter; settings from batch.yaml, then
    `conf`. For local masters the driver binds to 127.0.0.1 only."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    cfg = batch_config()["spark"]
    settings = dict(cfg["conf"])
    if master.startswith("local"):
        settings.update(cfg["local_conf"])
        os.environ.setdefault("SPARK_LOCAL_IP", str(cfg["local_conf"]["spark.driver.bindAddress"]))
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName("quote-stance-batch")
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def pyfunc_model_uri(model: str | Path | None) -> Iterator[str]:
    """A pyfunc model URI for `model`: MLflow URIs and saved pyfunc directories as they are;
    a preset or a pipeline directory saved as a temporary pyfunc model (the same signature
    training logs)."""
    if isinstance(model, str) and model.split(":", 1)[0] in ("models", "runs"):
        yield model
        return
    if model is not None and (Path(model) / "MLmodel").is_file():
        yield str(Path(model).resolve())
        return
    from inference.mlflow_model import save_pipeline_model

    source = pipeline_dir(model)
    if source is None or not (source / "pipeline.json").is_file():
        raise BatchError(f"no quote-stance model at {model!r}")
    with tempfile.TemporaryDirectory(prefix="quote-stance-pyfunc-") as tmp:
        yield str(save_pipeline_model(source, Path(tmp) / "model"))


def _parsed_rows(rows, prefix: str):
    """mapInPandas body: each (line, raw) through the local engine's parser."""
    import pandas as pd

    for frame in rows:
        out = []
        for line, raw in zip(frame["line"], frame["raw"]):
            try:
                doc = parse_line(raw, int(line), prefix)
            except ValueError as exc:
                out.append((int(line), raw_doc_id(raw), None, None, None, str(exc).splitlines()[0]))
                continue
            published = doc.published.isoformat() if doc.published else None
            out.append((int(line), doc.doc_id, doc.text, published, doc.lang, None))
        yield pd.DataFrame(out, columns=["line", "doc_id", "text", "published", "lang", "error"])


def read_input(spark, path: Path):
    """The input as (line, doc_id, text, published, lang, error), one row per non-blank record.

    Each record reaches the local engine's parser as a JSON line: JSONL as read, a Parquet row
    through `to_json` (types kept, so a non-string `text` is reported as locally)."""
    from pyspark.sql import functions as F

    if file_format(path) == "jsonl":
        frame = spark.read.text(str(path)).select(F.col("value").alias("raw"))
    else:
        frame = spark.read.parquet(str(path))
        if "text" not in frame.columns:
            raise BatchError(f"{path}: no 'text' column (columns: {', '.join(frame.columns)})")
        present = [c for c in INPUT_FIELDS if c in frame.columns]
        frame = frame.select(F.to_json(F.struct(*present)).alias("raw"))
    lines = frame.rdd.zipWithIndex().map(lambda p: (p[1] + 1, p[0][0])).toDF("line long, raw string")
    lines = lines.where(F.trim(F.col("raw")) != "")
    prefix = path.stem
    return lines.mapInPandas(lambda it: _parsed_rows(it, prefix), PARSED_SCHEMA)


def run_spark(
    input_path: str | Path,
    output: str | Path,
    model: str | Path | None = None,
    master: str = "local[*]",
    batch_size: int | None = None,
    part_rows: int | None = None,
    spark=None,
    conf: dict[str, str] | None = None,
    progress: bool = True,
) -> BatchStats:
    """Score INPUT into OUTPUT with Spark: in `spark`, or the active session, or else a session
    started on `master` (and stopped at the end)."""
    _require_pyspark()
    import mlflow.pyfunc
    import pyarrow.parquet as pq
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from tqdm import tqdm

    start = time.perf_counter()
    input_path, output = Path(input_path), Path(output)
    file_format(input_path), file_format(output)
    batch_size = batch_size or batch_config()["batch_size"]
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    own_session = spark is None
    if own_session:
        conf = {"spark.ui.showConsoleProgress": "true" if progress else "false", **(conf or {})}
        spark = spark_session(master, conf)
    staging = output.with_name(output.name + ".spark")
    try:
        with ResultWriter(output, input_path, part_rows=part_rows) as writer, pyfunc_model_uri(model) as uri:
            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
            predict = mlflow.pyfunc.spark_udf(spark, uri, result_type="string", env_manager="local", params={"output": "json"})
            parsed = read_input(spark, input_path).cache()
            failed = parsed.where(F.col("error").isNotNull()).select("line", "doc_id", F.lit(None).cast("string").alias("result"), F.lit(PARSE).alias("stage"), "error")
            todo = parsed.where(F.col("error").isNull()).drop("error")
            if writer.previous:
                done = spark.createDataFrame([(i,) for i in writer.previous], "doc_id string")
                todo = todo.join(F.broadcast(done), "doc_id", "left_anti")
            todo = todo.withColumn("first", F.min("line").over(Window.partitionBy("doc_id")))
            duplicates = todo.where(F.col("line") != F.col("first")).select(
                "line",
                "doc_id",
                F.lit(None).cast("string").alias("result"),
                F.lit(PARSE).alias("stage"),
                F.concat(F.lit("duplicate doc_id (first at line "), F.col("first").cast("string"), F.lit(")")).alias("error"),
            )
            partitions = max(1, spark.sparkContext.defaultParallelism * int(batch_config()["spark"]["partitions_per_core"]))
            unique = todo.where(F.col("line") == F.col("first")).repartitionByRange(partitions, "line").sortWithinPartitions("line")
            scored = unique.select(
                "line",
                "doc_id",
                predict(F.struct(*[F.col(c) for c in INPUT_FIELDS])).alias("result"),
                F.lit(None).cast("string").alias("stage"),
                F.lit(None).cast("string").alias("error"),
            )
            failed.unionByName(duplicates).unionByName(scored).write.mode("overwrite").parquet(str(staging))
            writer.stats.read = parsed.count()
            parsed.unpersist()
            staged_files = sorted(staging.glob("part-*.parquet"))
            total = sum(pq.ParquetFile(f).metadata.num_rows for f in staged_files)
            writer.stats.skipped = writer.stats.read - total
            with tqdm(total=total, desc="writing", unit="doc", disable=not progress) as bar:
                for f in staged_files:
                    for batch in pq.ParquetFile(f).iter_batches():
                        for row in batch.to_pylist():
                            writer.add(_output_row(row))
                        bar.update(batch.num_rows)
            stats = writer.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if own_session:
            spark.stop()
    stats.seconds = time.perf_counter() - start
    return stats


def _output_row(staged: dict) -> dict:
    if staged["error"] is not None:
        return error_row(staged["line"], staged["doc_id"], staged["stage"], staged["error"])
    if staged["result"] is None:
        return error_row(staged["line"], staged["doc_id"], ANALYZE, "the model returned nothing")
    return result_row(staged["line"], staged["result"])
