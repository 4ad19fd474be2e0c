"""What re-running only the unfinished files of a retried mini-batch saves.

    .venv/bin/python bench/bench_retries.py [--batches 8] [--batch-size 10] [--rounds 3]

Each mini-batch holds one corrupt file, so every mini-batch fails its first try and is retried until
``run_max_try`` (3); the corrupt file fails alone each time. Two variants run interleaved, round by round:
``resume`` (the default: a retried mini-batch takes the rows of its finished files from the journal and runs
only the rest) and ``rerun`` (``AZUREML_PARALLEL_R_RESUME=0``: every try runs every file again). Reported:
process_file() calls (exact) and wall time (median, and the ratio measured side by side). Nothing asserts.
The R work per file is a few SVDs, so the saving shows in time as well as in calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  cat("x\n", file = file.path(Sys.getenv("BENCH_CALLS"), paste0(Sys.getpid(), ".txt")), append = TRUE)
  if (readLines(input_path, n = 1L) == "corrupt") stop("corrupt input")
  for (i in 1:3) svd(matrix(runif(150 * 150), 150))
  writeLines("done", file.path(output_dir, "out.txt"))
  TRUE
}
"""


def run_once(inputs: Path, script: Path, work: Path, resume: bool, batch_size: int) -> tuple[float, int]:
    calls = work / "calls"
    calls.mkdir(parents=True)
    env = {
        **os.environ,
        "BENCH_CALLS": str(calls),
        "AZUREML_PARALLEL_R_RESUME": "1" if resume else "0",
        "PYTHONPATH": str(REPO / "plugins"),
    }
    argv = [
        sys.executable,
        "-m",
        "azureml_parallel_r.engine",
        "run",
        "--input",
        str(inputs),
        "--output",
        str(work / "out"),
        "--source-dir",
        str(REPO / "include"),
        "--entry-script",
        "entry/batch_wrapper.py",
        "--mini-batch-size",
        str(batch_size),
        "--process-count-per-node",
        "2",
        "--run-max-try",
        "3",
        "--env",
        f"BENCH_CALLS={calls}",
        "--env",
        f"AZUREML_PARALLEL_R_RESUME={1 if resume else 0}",
        "--",
        "--r-script",
        str(script),
        "--file-timeout",
        "120",
    ]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the engine failed: {done.stderr[-2000:]}")
    return seconds, sum(len(p.read_text().splitlines()) for p in calls.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="apr-bench-retries-"))
    inputs = root / "inputs"
    for batch in range(args.batches):
        for index in range(args.batch_size):
            name = inputs / f"{batch:03d}-{index:03d}"
            name.parent.mkdir(parents=True, exist_ok=True)
            name.write_text("corrupt\n" if index == args.batch_size - 1 else "fine\n")
    script = root / "work.r"
    script.write_text(R_SCRIPT)
    results: dict[str, list[tuple[float, int]]] = {"resume": [], "rerun": []}
    for round_ in range(args.rounds):
        for variant in ("resume", "rerun") if round_ % 2 == 0 else ("rerun", "resume"):
            results[variant].append(
                run_once(inputs, script, root / f"{variant}-{round_}", variant == "resume", args.batch_size)
            )
    files = args.batches * args.batch_size
    report = {}
    for variant, measured in results.items():
        report[variant] = {
            "median_seconds": round(statistics.median(s for s, _ in measured), 2),
            "process_file_calls": measured[0][1],
        }
    ratio = report["rerun"]["median_seconds"] / report["resume"]["median_seconds"]
    print(f"{files} files in {args.batches} mini-batches of {args.batch_size}, one corrupt file each, run_max_try=3")
    for variant, values in report.items():
        print(
            f"  {variant:7s} {values['process_file_calls']:5d} process_file() calls  "
            f"{values['median_seconds']:7.2f} s (median of {args.rounds})"
        )
    print(f"  rerun / resume wall time: {ratio:.2f}x")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"retries-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps({**report, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
