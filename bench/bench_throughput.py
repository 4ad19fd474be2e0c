"""Throughput of the R batch runtime: per-file mode vs worker mode vs a pure-R loop, at 1 and 2 processes.

    .venv/bin/python bench/bench_throughput.py [--files 500] [--rounds 3]

All variants run in one invocation, interleaved round by round (the machine is shared and noisy); the
report gives medians and ratios between variants measured side by side. Nothing asserts a time.

Workloads (R scripts, each file a 64x64 PNG):
- example: include/r/process_file.r, the product's example (stats.json + thumbnail.png per image)
- tiny:    bench/r/bench_work.r, read the PNG, take its mean, write one number (the worst case for any
           per-file overhead: ~0.2-0.5 ms of R work per file)
- cpu:     bench/r/bench_work.r --work N, N SVDs per file (CPU-bound, for 2-vs-1 process scaling)

Variants:
- per-file: the local engine + batch_wrapper.py --r-mode per-file (one Rscript per file: the original design)
- worker:   the local engine + batch_wrapper.py (one persistent R process per worker process)
- pure-R:   Rscript sourcing the same script and looping over the files (split in halves for 2 processes)

End-to-end times include every start-up a user pays (Python, the engine's worker processes, R). Each
variant also runs on 1 file, which gives its fixed start-up cost and its steady-state rate
(N - 1) / (t_N - t_1). Results: a table on stdout and bench/results/<timestamp>.json.
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
from collections.abc import Callable
from pathlib import Path

from azureml_parallel_r.samples import write_png

BENCH = Path(__file__).resolve().parent
INCLUDE = BENCH.parent / "include"
WORK_SCRIPT = BENCH / "r" / "bench_work.r"
EXAMPLE_SCRIPT = INCLUDE / "r" / "process_file.r"
LOOP = BENCH / "r" / "pure_loop.R"


def engine_run(
    inputs: Path, output: Path, processes: int, mode: str, script: Path, r_args: list[str], batch: int
) -> float:
    command = [
        sys.executable, "-m", "azureml_parallel_r.engine", "run",
        "--input", str(inputs), "--output", str(output), "--source-dir", str(INCLUDE),
        "--entry-script", "entry/batch_wrapper.py", "--mini-batch-size", str(batch),
        "--process-count-per-node", str(processes), "--run-invocation-timeout", "3600", "--error-threshold", "0",
        "--", "--r-script", str(script), "--r-mode", mode, "--input-root", str(inputs),
        *(f"--r-arg={arg}" for arg in r_args),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    rows = (output / "parallel_run_step.txt").read_text().count("\n")
    if rows != len(list(inputs.iterdir())):
        raise RuntimeError(f"{mode} run produced {rows} rows")
    return elapsed


def pure_r_run(files: list[Path], output: Path, processes: int, script: Path, r_args: list[str]) -> float:
    chunks = [chunk for chunk in (files[i::processes] for i in range(processes)) if chunk]
    lists = []
    for i, chunk in enumerate(chunks):
        listing = output.parent / f"{output.name}-files-{i}.txt"
        listing.write_text("".join(f"{f}\n" for f in chunk), encoding="utf-8")
        lists.append(listing)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(["Rscript", "--vanilla", str(LOOP), str(script), str(output / str(i)), str(listing), *r_args])
        for i, listing in enumerate(lists)
    ]  # fmt: skip
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("pure-R loop failed")
    return time.perf_counter() - started


Variant = Callable[[list[Path], Path, Path], float]


def variants(args: argparse.Namespace) -> dict[str, Variant]:
    """name -> run(files, inputs folder, output folder) returning seconds."""
    workloads = {"example": (EXAMPLE_SCRIPT, []), "tiny": (WORK_SCRIPT, ["--work", "0"])}
    batch = args.mini_batch_size
    found: dict[str, Variant] = {}
    for workload, (script, r_args) in workloads.items():
        for n in (1, 2):
            found[f"{workload} pure-R x{n}"] = lambda f, i, o, n=n, s=script, a=r_args: pure_r_run(f, o, n, s, a)
            found[f"{workload} worker x{n}"] = lambda f, i, o, n=n, s=script, a=r_args: engine_run(
                i, o, n, "worker", s, a, batch
            )
    cpu = ["--work", str(args.work)]
    for n in (1, 2):
        found[f"cpu worker x{n}"] = lambda f, i, o, n=n: engine_run(i, o, n, "worker", WORK_SCRIPT, cpu, batch)
    return found


def per_file_variants(args: argparse.Namespace) -> dict[str, Variant]:
    return {
        f"example per-file x{n}": lambda f, i, o, n=n: engine_run(
            i, o, n, "per-file", EXAMPLE_SCRIPT, [], args.mini_batch_size
        )
        for n in (1, 2)
    }


def measure(runs: dict[str, Variant], rounds: int, sizes: dict[str, tuple[list[Path], Path]], root: Path) -> dict:
    """Run every variant on every input size, interleaved, ``rounds`` times; return all timings."""
    times: dict[str, dict[str, list[float]]] = {size: {name: [] for name in runs} for size in sizes}
    for round_number in range(rounds):
        for size, (files, inputs) in sizes.items():
            for name, run in runs.items():
                output = root / f"out-{round_number}-{size}-{name.replace(' ', '_')}"
                times[size][name].append(run(files, inputs, output))
                shutil.rmtree(output, ignore_errors=True)
                print(f"round {round_number + 1}/{rounds} {size:>5s} files {name:22s} "
                      f"{times[size][name][-1]:8.2f} s", file=sys.stderr)  # fmt: skip
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--per-file-rounds", type=int, default=1, help="rounds of the slow per-file baseline")
    parser.add_argument("--work", type=int, default=6, help="SVDs per file for the CPU-bound scaling runs")
    parser.add_argument("--mini-batch-size", type=int, default=25)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="apr-bench-"))
    files = [Path(write_png(str(root / "in-n" / f"img_{i:05d}.png"), 64, 64, seed=i)) for i in range(args.files)]
    one = [Path(write_png(str(root / "in-1" / "img_00000.png"), 64, 64, seed=0))]
    sizes = {str(args.files): (files, root / "in-n"), "1": (one, root / "in-1")}
    times = measure(variants(args), args.rounds, sizes, root)
    if args.per_file_rounds:
        slow = measure(per_file_variants(args), args.per_file_rounds, sizes, root)
        for size in sizes:
            times[size].update(slow[size])
    shutil.rmtree(root, ignore_errors=True)

    n = args.files
    median = {name: statistics.median(values) for name, values in times[str(n)].items()}
    fixed = {name: statistics.median(values) for name, values in times["1"].items()}
    rate = {name: n / seconds for name, seconds in median.items()}
    steady = {name: (n - 1) / max(median[name] - fixed[name], 1e-9) for name in median}

    def ratio(a: str, b: str) -> tuple[float, float]:
        return rate[a] / rate[b], steady[a] / steady[b]

    ratios = {
        "example: worker / pure-R loop, 1 process": ratio("example worker x1", "example pure-R x1"),
        "example: worker / pure-R loop, 2 processes": ratio("example worker x2", "example pure-R x2"),
        "tiny: worker / pure-R loop, 1 process": ratio("tiny worker x1", "tiny pure-R x1"),
        "tiny: worker / pure-R loop, 2 processes": ratio("tiny worker x2", "tiny pure-R x2"),
        "cpu-bound worker: 2 processes / 1 process": ratio("cpu worker x2", "cpu worker x1"),
        "example worker: 2 processes / 1 process": ratio("example worker x2", "example worker x1"),
    }
    if args.per_file_rounds:
        ratios["example: worker / per-file, 1 process"] = ratio("example worker x1", "example per-file x1")
        ratios["example: worker / per-file, 2 processes"] = ratio("example worker x2", "example per-file x2")
    print(f"\n{n} PNGs 64x64, medians of {args.rounds} rounds (per-file: {args.per_file_rounds}), "
          f"mini_batch_size {args.mini_batch_size}; {os.cpu_count()} cores, {platform.platform()}")  # fmt: skip
    print(f"{'variant':24s} {'seconds':>8s} {'files/s':>8s} {'1 file s':>9s} {'steady files/s':>15s}")
    for name in median:
        print(f"{name:24s} {median[name]:8.2f} {rate[name]:8.1f} {fixed[name]:9.2f} {steady[name]:15.1f}")
    print(f"\n{'ratio':46s} {'end-to-end':>10s} {'steady':>8s}")
    for name, (end_to_end, steady_state) in ratios.items():
        print(f"{name:46s} {end_to_end:9.2f}x {steady_state:7.2f}x")
    result = {"files": n, "rounds": args.rounds, "work": args.work, "mini_batch_size": args.mini_batch_size,
              "times": times, "ratios": ratios, "cores": os.cpu_count(), "when": time.strftime("%F %T")}  # fmt: skip
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
