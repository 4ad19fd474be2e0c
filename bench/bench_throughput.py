"""Throughput of the R batch runtime against a bare R loop, at 1 and 2 processes, at 500 and 10,000 files.

    .venv/bin/python bench/bench_throughput.py [--files 500] [--rounds 3] [--big-files 10000] [--big-rounds 2]

All variants run in one invocation, interleaved round by round (the machine is shared and noisy); the
report gives medians and ratios between variants measured side by side. Nothing asserts a time.

Workloads (R scripts, each file a 64x64 PNG):
- example: include/r/process_file.r, the product's example (stats.json + thumbnail.png per image)
- tiny:    bench/r/bench_work.r, read the PNG, take its mean, write one number (the worst case for any
           per-file overhead)
- cpu:     bench/r/bench_work.r --work N, N SVDs per file (CPU-bound, for 2-vs-1 process scaling)

Variants:
- pure-R:   Rscript sourcing the same script and looping over the files (split in halves for 2 processes): the limit
- worker:   the local engine + batch_wrapper.py (one persistent R process per worker process)
- per-file: the local engine + batch_wrapper.py --r-mode per-file (one Rscript per file)
- R-alone:  compute/session.R fed the worker's requests from a file, no Python (the R side of worker mode)

End-to-end times include every start-up a user pays (Python, the engine's worker processes, R). Each
variant also runs on 1 file, which gives its fixed start-up cost and its steady-state rate
(N - 1) / (t_N - t_1). The --big-files runs are end to end only.

Besides the runs:
- validation: reading a 10,000-file worker run's results and validating them (what the DAG's validate task
  does), against the pure-R loop's time for the same files; and validation of 10,000 and 20,000 failed files
  excused by patterns (linear: the second should take about twice the first).
- filing: the per-file cost of putting one file's outputs in place (OutputLayout.commit) on its own, by
  rename (one local file system) and by copy (an output mount that refuses renames, as blobfuse does),
  with how many renames were attempted.

Results: a table on stdout and bench/results/throughput-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import errno
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
from unittest import mock

from azureml_parallel_r import status as run_status
from azureml_parallel_r.backends.local import local_results
from azureml_parallel_r.compute.output_layout import OutputLayout
from azureml_parallel_r.examples.samples import write_png
from azureml_parallel_r.models import RunResults, RunState
from azureml_parallel_r.output_checks import validate_outputs
from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME

BENCH = Path(__file__).resolve().parent
INCLUDE = BENCH.parent / "include"

WORK_SCRIPT = BENCH / "r" / "bench_work.r"
EXAMPLE_SCRIPT = INCLUDE / "r" / "process_file.r"
LOOP = BENCH / "r" / "pure_loop.R"
SESSION_R = BENCH.parent / "plugins" / "azureml_parallel_r" / "compute" / "session.R"
ROWS_FILE = DEFAULT_APPEND_ROW_FILE_NAME


def engine_run(
    inputs: Path,
    output: Path,
    processes: int,
    mode: str,
    script: Path,
    r_args: list[str],
    batch: int,
    code: Path = BENCH.parent,
) -> float:
    """Seconds of one local-engine run; ``code`` is the checkout whose engine and include/ run (the
    --compare-with option runs another one side by side)."""
    if script.is_relative_to(INCLUDE):
        script = code / "include" / script.relative_to(INCLUDE)
    env = {**os.environ, "PYTHONPATH": str(code / "plugins")}
    command = [
        sys.executable,
        "-m",
        "azureml_parallel_r.engine",
        "run",
        "--input",
        str(inputs),
        "--output",
        str(output),
        "--source-dir",
        str(code / "include"),
        "--entry-script",
        "entry/batch_wrapper.py",
        "--mini-batch-size",
        str(batch),
        "--process-count-per-node",
        str(processes),
        "--error-threshold",
        "0",
        "--",
        "--r-script",
        str(script),
        "--r-mode",
        mode,
        "--input-root",
        str(inputs),
        *(f"--r-arg={arg}" for arg in r_args),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - started
    rows = (output / ROWS_FILE).read_text().count("\n")
    if rows != len(os.listdir(inputs)):
        raise RuntimeError(f"{mode} run produced {rows} rows")
    return elapsed


def validate_run(inputs: Path, output: Path) -> float:
    """Seconds to read a finished run's results and validate them, as the DAG's validate task does."""
    started = time.perf_counter()
    state = RunState(run_id=output.name, status=run_status.FINISHED)
    results = local_results(state, str(output), str(output / "logs"), ROWS_FILE)
    report = validate_outputs(sorted(os.listdir(inputs)), results)
    elapsed = time.perf_counter() - started
    if not report.passed:
        raise RuntimeError(f"validation failed: {report.problems}")
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
    ]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("pure-R loop failed")
    elapsed = time.perf_counter() - started
    for listing in lists:
        listing.unlink()
    return elapsed


def r_alone_run(files: list[Path], output: Path, script: Path, r_args: list[str], batch: int) -> float:
    """compute/session.R on its own, fed the same mini-batch requests from a file, its answers to /dev/null: the
    R side of worker mode without Python (its cost over the pure-R loop is the protocol's, in R); the replies go to a
    file, as in worker mode."""
    requests = output.parent / f"{output.name}-requests.jsonl"
    replies = output.parent / f"{output.name}-replies.jsonl"
    lines = [{"cmd": "load", "script": str(script), "log": str(output.parent / f"{output.name}-r.log")}]
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        items = [{"input": str(f), "output_dir": str(output / str(start + i))} for i, f in enumerate(chunk)]
        lines.append({"cmd": "batch", "files": items, "args": r_args, "stop_on_error": True, "replies": str(replies)})
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    output.mkdir()
    with open(requests, "rb") as request, open(os.devnull, "wb") as answers:
        fds = (request.fileno(), answers.fileno())
        started = time.perf_counter()
        subprocess.run(["Rscript", "--vanilla", str(SESSION_R), *map(str, fds)], check=True, pass_fds=fds)
        elapsed = time.perf_counter() - started
    requests.unlink()
    replies.unlink()
    if len(os.listdir(output)) != len(files):
        raise RuntimeError("session.R alone did not process every file")
    return elapsed


Variant = Callable[[list[Path], Path, Path], float]
WORKLOADS = {"example": (EXAMPLE_SCRIPT, []), "tiny": (WORK_SCRIPT, ["--work", "0"])}


def variants(args: argparse.Namespace, validations: dict[str, list[float]]) -> dict[str, Variant]:
    """name -> run(files, inputs folder, output folder) returning seconds. Worker runs over more than
    ``--files`` files also time their validation (into ``validations``)."""
    batch = args.mini_batch_size

    def worker(inputs: Path, output: Path, n: int, script: Path, r_args: list[str], name: str) -> float:
        elapsed = engine_run(inputs, output, n, "worker", script, r_args, batch)
        if len(os.listdir(inputs)) > args.files:
            validations.setdefault(name, []).append(validate_run(inputs, output))
        return elapsed

    found: dict[str, Variant] = {}
    for workload, (script, r_args) in WORKLOADS.items():
        for n in (1, 2):
            name = f"{workload} worker x{n}"
            found[f"{workload} pure-R x{n}"] = lambda f, i, o, n=n, s=script, a=r_args: pure_r_run(f, o, n, s, a)
            found[name] = lambda f, i, o, n=n, s=script, a=r_args, m=name: worker(i, o, n, s, a, m)
        found[f"{workload} R-alone x1"] = lambda f, i, o, s=script, a=r_args: r_alone_run(f, o, s, a, batch)
    if args.compare_with:  # another checkout's worker mode, side by side (e.g. the code before a change)
        other = Path(args.compare_with).resolve()
        for workload, (script, r_args) in WORKLOADS.items():
            for n in (1, 2):
                found[f"{workload} worker x{n} (other)"] = lambda f, i, o, n=n, s=script, a=r_args: engine_run(
                    i, o, n, "worker", s, a, batch, other
                )
    if args.skip_cpu:
        return found
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


Size = tuple[list[Path], Path, list[str]]  # files, their folder, the variants that run at this size


def measure(runs: dict[str, Variant], rounds: dict[str, int], sizes: dict[str, Size], root: Path) -> dict:
    """Run the variants at every input size, interleaved, ``rounds[size]`` times; return all timings."""
    times: dict[str, dict[str, list[float]]] = {size: {name: [] for name in sizes[size][2]} for size in sizes}
    for round_number in range(max(rounds.values())):
        for size, (files, inputs, names) in sizes.items():
            if round_number >= rounds[size]:
                continue
            for name in names:
                output = root / f"out-{round_number}-{size}-{name.replace(' ', '_')}"
                os.sync()  # the previous run's writes and deletions are not left for this one to pay for
                times[size][name].append(runs[name](files, inputs, output))
                shutil.rmtree(output, ignore_errors=True)
                print(
                    f"round {round_number + 1}/{rounds[size]} {size:>6s} files {name:22s} "
                    f"{times[size][name][-1]:8.2f} s",
                    file=sys.stderr,
                )
    return times


def failed_validation(failed: int, patterns: int = 5) -> float:
    """Seconds to validate a run of ``failed`` files that all failed, excused by the last of ``patterns``."""
    files = [f"cam{i % 7}/img_{i:06d}.png" for i in range(failed)]
    failures = {path: {"kind": "r_error", "error": "not a PNG", "attempt": 3} for path in files}
    results = RunResults(RunState(run_id="bench", status=run_status.FINISHED), failures=failures)
    allowed = [f"nothing{i}/*" for i in range(patterns - 1)] + ["cam*/*.png"]
    started = time.perf_counter()
    report = validate_outputs(files, results, allowed_failure_patterns=allowed)
    elapsed = time.perf_counter() - started
    assert report.passed and report.counts.failed_allowed_by_pattern == failed
    return elapsed


def direct_write_cost(root: Path, files: int) -> float:
    """Per-file seconds of writing the same outputs straight into their final folders (what a hand-written
    loop writing to the output mount pays anyway: one folder and two files per input)."""
    started = time.perf_counter()
    for i in range(files):
        folder = root / "output" / "results" / "cam" / f"img_{i:06d}.png"
        folder.mkdir(parents=True)
        (folder / "stats.json").write_text('{"width":64,"height":64,"channels":3}' * 8)
        (folder / "thumbnail.png").write_bytes(os.urandom(2048))
    elapsed = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    return elapsed / files


def filing_cost(root: Path, files: int, refuse_rename: bool) -> tuple[float, int]:
    """Per-file seconds of OutputLayout.commit for outputs like the example's (a small JSON and a PNG), and the
    renames attempted. ``refuse_rename``: os.rename fails with EXDEV, as on an output mount (blobfuse)."""
    layout = OutputLayout(str(root / "output"), "bench", scratch_dir=str(root / "local"))
    scratches = []
    for _ in range(files):
        scratch = Path(layout.new_scratch())
        (scratch / "stats.json").write_text('{"width":64,"height":64,"channels":3}' * 8)
        (scratch / "thumbnail.png").write_bytes(os.urandom(2048))
        scratches.append(str(scratch))
    attempts = 0
    real_rename = os.rename

    def rename(source: str, target: str) -> None:
        nonlocal attempts
        attempts += 1
        if refuse_rename:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    with mock.patch("os.rename", rename):
        started = time.perf_counter()
        for i, scratch in enumerate(scratches):
            layout.commit(scratch, f"cam/img_{i:06d}.png")
        elapsed = time.perf_counter() - started
    shutil.rmtree(root, ignore_errors=True)
    return elapsed / files, attempts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--big-files", type=int, default=10000, help="files of the end-to-end runs (0: skip)")
    parser.add_argument("--big-rounds", type=int, default=2, help="rounds of the --big-files runs")
    parser.add_argument("--per-file-rounds", type=int, default=1, help="rounds of the slow per-file baseline")
    parser.add_argument("--work", type=int, default=6, help="SVDs per file for the CPU-bound scaling runs")
    parser.add_argument("--skip-cpu", action="store_true", help="leave out the CPU-bound scaling runs")
    parser.add_argument("--mini-batch-size", type=int, default=25)
    parser.add_argument(
        "--compare-with",
        metavar="CHECKOUT",
        help="also run worker mode from another checkout of this repository (its plugins/ and include/), side by side",
    )
    parser.add_argument(
        "--root",
        help="folder for inputs, outputs and temporary files (default: the system's "
        "temporary folder; /dev/shm takes the disk out and leaves the runtime's CPU cost)",
    )
    args = parser.parse_args()
    times, validations = run_all(args)
    result = report(args, times, validations)
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1))
    return 0


def run_all(args: argparse.Namespace) -> tuple[dict, dict[str, list[float]]]:
    """Every run, interleaved: timings by size and variant, and validation timings by variant."""
    root = Path(tempfile.mkdtemp(prefix="apr-bench-", dir=args.root))
    os.environ["TMPDIR"] = str(root)  # the engine's per-run temporary folders (scratch, journal) go there too
    validations: dict[str, list[float]] = {}
    runs = variants(args, validations)
    n, big = args.files, args.big_files
    sizes: dict[str, Size] = {}
    for count in (n, 1):
        folder = root / f"in-{count}"
        files = [Path(write_png(str(folder / f"img_{i:05d}.png"), 64, 64, seed=i)) for i in range(count)]
        sizes[str(count)] = (files, folder, list(runs))
    rounds = {str(n): args.rounds, "1": args.rounds}
    if big:
        folder = root / f"in-{big}"
        files = [Path(write_png(str(folder / f"img_{i:05d}.png"), 64, 64, seed=i)) for i in range(big)]
        sizes[str(big)] = (files, folder, [name for name in runs if not name.startswith("cpu")])
        rounds[str(big)] = args.big_rounds
    times = measure(runs, rounds, sizes, root)
    if args.per_file_rounds:
        slow_sizes = {size: (*sizes[size][:2], list(per_file_variants(args))) for size in (str(n), "1")}
        slow = measure(per_file_variants(args), dict.fromkeys(slow_sizes, args.per_file_rounds), slow_sizes, root)
        for size in slow_sizes:
            times[size].update(slow[size])
    shutil.rmtree(root, ignore_errors=True)
    return times, validations


def side_measurements(
    args: argparse.Namespace,
    steady: dict[str, float],
    big_median: dict[str, float],
    validations: dict[str, list[float]],
) -> tuple[dict, dict, dict]:
    """Validation and filing costs, printed against the R work; returns them."""
    big = args.big_files
    validation = {}
    if validations:
        print(f"\nvalidation of a {big}-file worker run (read results + validate), against the pure-R loop's time")
        for name, values in validations.items():
            seconds = statistics.median(values)
            loop = big_median[name.replace("worker", "pure-R").replace("x2", "x1")]
            validation[name] = {"seconds": seconds, "of_pure_r_x1": seconds / loop}
            print(f"  {name:22s} {seconds:6.3f} s = {100 * seconds / loop:4.1f}% of the pure-R loop x1 ({loop:.2f} s)")
    failed = {count: statistics.median(failed_validation(count) for _ in range(3)) for count in (10000, 20000)}
    print(
        f"validation of all-failed runs excused by patterns: 10,000 failures {failed[10000]:.3f} s, 20,000 "
        f"{failed[20000]:.3f} s ({failed[20000] / failed[10000]:.2f}x for 2x the failures)"
    )

    filing: dict[str, dict[str, float]] = {}
    per_file_r = 1 / steady["example pure-R x1"]
    print(
        f"\nfiling one file's outputs (stats.json + thumbnail.png), per file, 3 interleaved rounds of 2000; "
        f"the example's R work: {1e6 * per_file_r:.0f} us/file"
    )
    labels = {
        "rename (one file system)": False,
        "copy (mount refusing renames)": True,
        "reference: written in place": None,
    }
    costs: dict[str, list[tuple[float, int]]] = {label: [] for label in labels}
    for _ in range(3):
        for label, refuse in labels.items():
            folder = Path(tempfile.mkdtemp(prefix="apr-filing-", dir=args.root))
            os.sync()
            costs[label].append(
                (direct_write_cost(folder, 2000), 0) if refuse is None else filing_cost(folder, 2000, refuse)
            )
    for label, measured in costs.items():
        seconds = statistics.median(cost for cost, _ in measured)
        filing[label] = {"seconds_per_file": seconds, "renames_attempted_for_2000_files": measured[0][1]}
        print(
            f"  {label:32s} {1e6 * seconds:6.0f} us/file = {100 * seconds / per_file_r:4.1f}% of the R work; "
            f"renames attempted for 2000 files: {measured[0][1]}"
        )

    return validation, failed, filing


def report(args: argparse.Namespace, times: dict, validations: dict[str, list[float]]) -> dict:
    """Print the tables and return the result record."""
    n, big = args.files, args.big_files
    median = {name: statistics.median(values) for name, values in times[str(n)].items()}
    fixed = {name: statistics.median(values) for name, values in times["1"].items()}
    rate = {name: n / seconds for name, seconds in median.items()}
    steady = {name: (n - 1) / max(median[name] - fixed[name], 1e-9) for name in median}
    big_median = {name: statistics.median(values) for name, values in times.get(str(big), {}).items()}

    def ratio(a: str, b: str) -> tuple[float, float, float | None]:
        at_big = big_median[b] / big_median[a] if a in big_median and b in big_median else None
        return rate[a] / rate[b], steady[a] / steady[b], at_big

    ratios = {}
    for workload in WORKLOADS:
        for p in (1, 2):
            process = "process" if p == 1 else "processes"
            ratios[f"{workload}: worker / pure-R loop, {p} {process}"] = ratio(
                f"{workload} worker x{p}", f"{workload} pure-R x{p}"
            )
    for workload in WORKLOADS:
        ratios[f"{workload}: session.R alone / pure-R loop, 1 process"] = ratio(
            f"{workload} R-alone x1", f"{workload} pure-R x1"
        )
    for name in [name for name in median if name.endswith(" (other)")]:
        ratios[f"{name[: -len(' (other)')]}: this checkout / the other"] = ratio(name[: -len(" (other)")], name)
    if not args.skip_cpu:
        ratios["cpu-bound worker: 2 processes / 1 process"] = ratio("cpu worker x2", "cpu worker x1")
    ratios["example worker: 2 processes / 1 process"] = ratio("example worker x2", "example worker x1")
    if args.per_file_rounds:
        ratios["example: worker / per-file, 1 process"] = ratio("example worker x1", "example per-file x1")
        ratios["example: worker / per-file, 2 processes"] = ratio("example worker x2", "example per-file x2")

    print(
        f"\n{n} PNGs 64x64, medians of {args.rounds} rounds (per-file: {args.per_file_rounds}); {big} PNGs: "
        f"{args.big_rounds} rounds; mini_batch_size {args.mini_batch_size}; {os.cpu_count()} cores, "
        f"{platform.platform()}"
    )
    print(
        f"{'variant':24s} {'seconds':>8s} {'files/s':>8s} {'1 file s':>9s} {'steady files/s':>15s} "
        f"{f'{big} files s':>13s}"
    )
    for name in median:
        at_big = f"{big_median[name]:13.2f}" if name in big_median else ""
        print(f"{name:24s} {median[name]:8.2f} {rate[name]:8.1f} {fixed[name]:9.2f} {steady[name]:15.1f} {at_big}")
    print(
        f"\n{'ratio (rate of the first / rate of the second)':50s} {'end-to-end':>10s} {'steady':>8s} "
        f"{f'{big} e2e':>10s}"
    )
    for name, (end_to_end, steady_state, at_big) in ratios.items():
        big_text = f"{at_big:9.2f}x" if at_big is not None else ""
        print(f"{name:50s} {end_to_end:9.2f}x {steady_state:7.2f}x {big_text}")

    validation, failed, filing = side_measurements(args, steady, big_median, validations)
    return {
        "files": n,
        "rounds": args.rounds,
        "big_files": big,
        "big_rounds": args.big_rounds,
        "work": args.work,
        "mini_batch_size": args.mini_batch_size,
        "times": times,
        "ratios": ratios,
        "validation": validation,
        "failed_validation_seconds": failed,
        "filing": filing,
        "cores": os.cpu_count(),
        "when": time.strftime("%F %T"),
    }


if __name__ == "__main__":
    sys.exit(main())
