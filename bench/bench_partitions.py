"""What a table's partitions cost against the same data as files, and against a bare R loop.

    .venv/bin/python bench/bench_partitions.py [--stores 100] [--weeks 60] [--rounds 3]

One table shaped like Microsoft's orange juice sales sample (``--stores`` stores x 3 brands, ``--weeks`` rows each,
partitioned in folders with an MLTable file), and the same partitions as plain CSV files. All variants run in one
invocation, interleaved round by round (the machine is shared and noisy); the report gives medians and ratios
measured side by side. Nothing asserts a time.

Variants (2 worker processes on the local engine; each R script sums a partition's Quantity and writes one number):
- table:   the MLTable folder with --partition-keys Store,Brand: one run() per partition, a DataFrame handed to
           process_partition(data, keys, output_dir, args) as a data.frame (Python writes it as CSV, R reads it)
- files:   the partitions' CSV files without the MLTable file: process_file(input_path, ...) reads each with
           read.csv, 10 files per run()
- pure-R:  Rscript looping over the CSV files in one process (split in halves for 2 processes): the limit
- forecast: the table variant with include/r/forecast_per_store.r (two lm() fits and a forecast per partition)

Results: a table on stdout and bench/results/partitions-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from azureml_parallel_r.examples.samples import make_oj_sales_table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FORECAST = REPO / "include" / "r" / "forecast_per_store.r"
TABLE_R = """
process_partition <- function(data, keys, output_dir, args) {
  writeLines(as.character(sum(data$Quantity)), file.path(output_dir, "total.txt"))
  nrow(data)
}
"""
FILES_R = """
process_file <- function(input_path, output_dir, args) {
  data <- utils::read.csv(input_path)
  writeLines(as.character(sum(data$Quantity)), file.path(output_dir, "total.txt"))
  nrow(data)
}
"""
PURE_R = """
files <- commandArgs(trailingOnly = TRUE)
out <- tempfile()
for (f in files) { data <- utils::read.csv(f); writeLines(as.character(sum(data$Quantity)), out) }
"""


def engine(input_dir: Path, output: Path, script: Path, *extra: str) -> float:
    """One local-engine run, end to end; its wall time."""
    args = [
        sys.executable, "-m", "azureml_parallel_r.engine", "run", "--input", str(input_dir), "--output", str(output),
        "--source-dir", str(REPO / "include"), "--entry-script", "entry/batch_wrapper.py",
        "--process-count-per-node", "2", *extra, "--", "--r-script", str(script),
    ]  # fmt: skip
    if "--partition-keys" in extra:
        args.append("--input-kind=table")
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the run failed: {done.stderr[-2000:]}")
    shutil.rmtree(output)
    return seconds


def pure_r(files: list[str], script: Path) -> float:
    halves = [files[: len(files) // 2], files[len(files) // 2 :]]
    started = time.perf_counter()
    running = [subprocess.Popen(["Rscript", "--vanilla", str(script), *half]) for half in halves]
    if any(process.wait() for process in running):
        raise RuntimeError("the pure R loop failed")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    try:
        table = work / "table"
        files = make_oj_sales_table(str(table), stores=args.stores, weeks=args.weeks)
        plain = work / "files"
        shutil.copytree(table, plain)
        (plain / "MLTable").unlink()
        plain_files = sorted(str(p) for p in plain.rglob("*.csv"))
        scripts = {}
        for name, code in (("table.r", TABLE_R), ("files.r", FILES_R), ("pure.r", PURE_R)):
            scripts[name] = work / name
            scripts[name].write_text(code)
        variants = {
            "table": lambda n: engine(table, work / f"out-t{n}", scripts["table.r"], "--partition-keys", "Store,Brand"),
            "files": lambda n: engine(plain, work / f"out-f{n}", scripts["files.r"], "--mini-batch-size", "10"),
            "pure-R": lambda n: pure_r(plain_files, scripts["pure.r"]),
            "forecast": lambda n: engine(table, work / f"out-r{n}", FORECAST, "--partition-keys", "Store,Brand"),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            for name, run in variants.items():
                times[name].append(run(round_number))
                print(f"round {round_number + 1}: {name} {times[name][-1]:.2f} s", file=sys.stderr)
        medians = {name: statistics.median(values) for name, values in times.items()}
        partitions = len(files)
        report = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "partitions": partitions,
            "rows_per_partition": args.weeks,
            "seconds": times,
            "median_seconds": medians,
            "ms_per_partition": {name: 1000 * seconds / partitions for name, seconds in medians.items()},
            "ratios": {
                "table / files": medians["table"] / medians["files"],
                "table / pure-R": medians["table"] / medians["pure-R"],
                "files / pure-R": medians["files"] / medians["pure-R"],
                "forecast / table": medians["forecast"] / medians["table"],
            },
        }
        print(f"{partitions} partitions of {args.weeks} rows, 2 worker processes, {args.rounds} rounds (medians):")
        for name, seconds in medians.items():
            print(f"  {name:9s} {seconds:7.2f} s  {report['ms_per_partition'][name]:6.1f} ms a partition")
        for name, ratio in report["ratios"].items():
            print(f"  {name:17s} {ratio:5.2f}")
        results = BENCH / "results"
        results.mkdir(exist_ok=True)
        (results / f"partitions-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
