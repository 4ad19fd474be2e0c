"""What a run's size costs per process: the journal of finished files at many processes, validation of a large run,
and the registration of a large input folder, before and after a change, side by side in one run.

    .venv/bin/python bench/bench_scale.py [--files 1000000] [--processes 32] [--validation-files 200000]
                                           [--registration-files 200000] [--engine-files 200000,1000000]
                                           [--parts journal,validation,registration,engine] [--before REV]
                                           [--root /dev/shm]

``--before`` (default: the commit before the journal was kept per mini-batch) is taken from git (``git archive``
of its ``plugins/`` and ``include/``); "after" is this checkout. Each measurement runs in a fresh Python process
(its peak RSS is its own), the two variants one after the other for each part:

- **journal**: one of ``--processes`` worker processes of a run of ``--files`` files in mini-batches of
  ``default_mini_batch_size``: the other processes' journals are written first (not measured), then the process
  takes its share of the mini-batches, all first tries: CPU per file of its own and peak RSS. Before, the first
  mini-batch not wholly its own parsed and kept every other process's rows;
- **validation**: a finished local run of ``--validation-files`` files on disk (a 320-byte row and one output file
  each), read and validated as the DAG's task does (``local_results`` then ``validate_outputs``);
- **registration**: a folder of ``--registration-files`` empty files registered by the local backend;
- **start-up**: a local run over that folder at 2 processes with a trivial R script, from ``submit`` until the
  first file's outputs are in place (the controller reading the file list, the workers and R starting);
- **engine** (this checkout only; ``--engine-files``, default 200,000 and 1,000,000): a whole local run
  of that many empty files at 2 processes with a trivial R script, through ``batch_wrapper.py``: CPU per file of
  the whole process tree (controller, workers, R), and the peak RSS (``VmHWM``) of the controller, of each worker's
  Python and of its R. Flat memory means the same peaks at both sizes, beyond the controller's path list.
  (``ru_maxrss`` would not do for the workers: Linux carries a process's peak across ``exec``, so a worker would
  report the controller's size when it was forked.)

Nothing asserts; the figures go to docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from azureml_parallel_r.run_settings import default_mini_batch_size

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEFORE = "26bf77e"  # the last commit with one journal per process

JOURNAL = r"""
import json, os, resource, sys, time
try:
    from azureml_parallel_r.compute.journal import Journal
except ImportError:  # a checkout from before the compute package (include/entry on PYTHONPATH)
    from journal import Journal
mode, folder, files, processes, me, size = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
batches = [[f"camera-{i % 17:02d}/img_{i:07d}.png" for i in range(start, min(files, start + size))]
           for start in range(0, files, size)]
def row(path):
    return json.dumps({"input": "/mnt/inputs/" + path, "relative_path": path,
                       "outputs": ["results/" + path + "/stats.json"], "seconds": 0.0123,
                       "value": {"kind": "image", "width": 64, "height": 48, "channels": 3}})
def work(journal, batch):
    done = journal.begin(batch) if hasattr(journal, "begin") else journal.finished(batch)
    for path in batch:
        if path not in done:
            journal.record(path, row(path))
    journal.flush()
if mode == "others":  # every other process's share, each in its own journal
    journals = {}
    for index, batch in enumerate(batches):
        process = index % processes
        if process != me:
            journal = journals.setdefault(process, Journal(folder, f"host-{process}", base_dir=folder))
            work(journal, batch)
            if not hasattr(journal, "begin"):
                journal._rows.clear()  # the writer's own memory is not what is measured
    for journal in journals.values():
        journal.close()
else:
    journal = Journal(folder, f"host-{me}", base_dir=folder)
    mine = [batch for index, batch in enumerate(batches) if index % processes == me]
    start = time.process_time()
    for batch in mine:
        work(journal, batch)
    cpu = time.process_time() - start
    own = sum(len(batch) for batch in mine)
    print(json.dumps({"own_files": own, "cpu_us_per_own_file": 1e6 * cpu / own,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

START = r"""
import os, sys, time
from pathlib import Path
from azureml_parallel_r.backends.local import LocalBackend
from azureml_parallel_r.models import RunRequest
from azureml_parallel_r.run_settings import ParallelRunSettings
root, include, script = sys.argv[1], sys.argv[2], sys.argv[3]
backend = LocalBackend(root, source_directory=include, process_count_per_node=2)
dataset = backend.register_file_dataset("r-script-inputs/big", name="big", tags={"logical_date": "x"})
settings = ParallelRunSettings(mini_batch_size=200, process_count_per_node=2, error_threshold=-1)
request = RunRequest(dataset=dataset, output_path="r-script-outputs/x/{run-id}", run_key={"bench": str(time.time())},
                     r_script=script, settings=settings)
start = time.perf_counter()
ref = backend.submit(request)
results = Path(root) / ref.output_path / "results"
while not (results.is_dir() and any(os.scandir(results))):  # the first file's outputs are in place
    time.sleep(0.01)
first = time.perf_counter() - start
backend.cancel(ref.run_id)
print('{"seconds_to_first_file": %.3f}' % first)
"""

VALIDATION = r"""
import json, resource, sys, time
from azureml_parallel_r.backends.local import local_results
from azureml_parallel_r.models import RunState
from azureml_parallel_r.output_checks import validate_outputs
output, files = sys.argv[1], int(sys.argv[2])
names = [f"camera-{i % 17:02d}/img_{i:07d}.png" for i in range(files)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start, cpu = time.perf_counter(), time.process_time()
results = local_results(RunState("run", "Finished", started_at=0.0, ended_at=60.0), output, output + "/logs",
                        "parallel_run_step.txt", {"name": "d", "version": 1})
report = validate_outputs(names, results, allowed_failures=0)
assert report.passed, report.problems
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mib": base}))
"""

ENGINE = r"""
import json, os, resource, shutil, subprocess, sys, time
inputs, output, include, script, files, size = sys.argv[1:7]
source, rss = output + "-code", output + "-rss"
shutil.copytree(include, source)
os.makedirs(rss)
WRAPPER = '''
import importlib.util, json, os, sys
_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("batch_wrapper", os.path.join(_here, "batch_wrapper.py"))
batch_wrapper = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(batch_wrapper)
init, run = batch_wrapper.init, batch_wrapper.run
def high_water_mib(pid):  # the process's own peak (VmHWM): ru_maxrss would count the fork it was exec'd from
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
def shutdown():
    processor = batch_wrapper.processor()
    r_pid = processor.session.pid if processor is not None else None
    peaks = {"r": high_water_mib(r_pid) if r_pid else 0.0}
    batch_wrapper.shutdown()
    peaks["worker"] = high_water_mib("self")
    with open(os.path.join(os.environ["BENCH_RSS"], f"{os.getpid()}.json"), "w") as out:
        json.dump(peaks, out)
'''
with open(os.path.join(source, "entry", "measured_entry.py"), "w") as handle:  # batch_wrapper, and its peaks
    handle.write(WRAPPER)
command = [sys.executable, "-m", "azureml_parallel_r.engine", "run", "--input", inputs, "--output", output,
           "--source-dir", source, "--entry-script", "entry/measured_entry.py", "--mini-batch-size", size,
           "--process-count-per-node", "2", "--error-threshold", "0", "--",
           "--r-script", script, "--input-root", inputs]
start = time.perf_counter()
controller = subprocess.Popen(command, env={**os.environ, "BENCH_RSS": rss}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
peak = 0
while controller.poll() is None:  # the controller's own peak (VmHWM), read while it runs
    try:
        with open(f"/proc/{controller.pid}/status") as status:
            peak = max([peak] + [int(line.split()[1]) for line in status if line.startswith("VmHWM:")])
    except OSError:
        pass
    time.sleep(0.2)
seconds = time.perf_counter() - start
assert controller.returncode == 0, controller.returncode
tree = resource.getrusage(resource.RUSAGE_CHILDREN)
peaks = [json.load(open(os.path.join(rss, name))) for name in os.listdir(rss)]
rows = sum(1 for _ in open(os.path.join(output, "parallel_run_step.txt")))
assert rows == int(files), rows
print(json.dumps({"seconds": seconds, "cpu_us_per_file": 1e6 * (tree.ru_utime + tree.ru_stime) / int(files),
                  "controller_mib": peak / 1024, "worker_mib": max(p["worker"] for p in peaks),
                  "r_mib": max(p["r"] for p in peaks)}))
"""

REGISTRATION = r"""
import json, resource, sys, time
from azureml_parallel_r.backends.local import LocalBackend
root = sys.argv[1]
start, cpu = time.perf_counter(), time.process_time()
dataset = LocalBackend(root).register_file_dataset("r-script-inputs/big", name="big", tags={"logical_date": "x"})
print(json.dumps({"files": dataset.file_count, "seconds": time.perf_counter() - start,
                  "cpu_seconds": time.process_time() - cpu,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def checkout(rev: str, into: Path) -> Path:
    """``plugins/`` and ``include/`` of ``rev``, from git."""
    archive = into / f"{rev}.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "archive", rev, "plugins", "include"], cwd=REPO, stdout=handle, check=True)
    root = into / rev
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


def run(code: str, root: Path, *args: object) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "plugins"), str(root / "include" / "entry")])}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"a measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def make_run_output(folder: Path, files: int) -> None:
    """A finished local run's output folder: its rows file and one output per file."""
    (folder / "logs").mkdir(parents=True)
    with open(folder / "parallel_run_step.txt", "w", encoding="utf-8") as rows:
        for i in range(files):
            path = f"camera-{i % 17:02d}/img_{i:07d}.png"
            target = folder / "results" / path
            target.mkdir(parents=True)
            (target / "stats.json").write_bytes(b"{}")
            rows.write(
                json.dumps(
                    {
                        "input": "/mnt/inputs/" + path,
                        "relative_path": path,
                        "outputs": [f"results/{path}/stats.json"],
                        "seconds": 0.01 + (i % 89) / 1000,
                        "value": {"kind": "image", "width": 64, "height": 48, "channels": 3},
                    }
                )
                + "\n"
            )


PARTS = ("journal", "validation", "registration", "engine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--validation-files", type=int, default=200_000)
    parser.add_argument("--registration-files", type=int, default=200_000)
    parser.add_argument("--engine-files", default="200000,1000000", help="file counts of the whole-run part")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"which parts, of {','.join(PARTS)} (registration includes start-up)"
    )
    parser.add_argument("--before", default=DEFAULT_BEFORE)
    parser.add_argument("--root", default=None, help="where the files are made (default: the temporary folder)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    work = Path(tempfile.mkdtemp(prefix="apr-scale-", dir=args.root))
    script = work / "trivial.r"
    script.write_text("process_file <- function(input_path, output_dir, args) TRUE\n")
    try:
        variants = {"before": checkout(args.before, work), "after": REPO}
        print(f"{platform.platform()}; before = {args.before}, after = this checkout")
        if "journal" in parts:
            journal_part(work, variants, args.files, args.processes)
        if "validation" in parts:
            validation_part(work, variants, args.validation_files)
        if "registration" in parts:
            registration_part(work, variants, args.registration_files, script)
        if "engine" in parts:
            engine_part(work, script, [int(n) for n in args.engine_files.split(",") if int(n)])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def journal_part(work: Path, variants: dict[str, Path], files: int, processes: int) -> None:
    size = default_mini_batch_size(files, processes)
    print(f"\njournal: 1 of {processes} processes, {files} files in mini-batches of {size}, first tries")
    for name, root in variants.items():
        folder = work / f"journal-{name}"
        run(JOURNAL, root, "others", folder, files, processes, 0, size)
        figures = run(JOURNAL, root, "mine", folder, files, processes, 0, size)
        print(
            f"  {name:7} {figures['own_files']} own files  {figures['cpu_us_per_own_file']:8.1f} us CPU per own "
            f"file  peak RSS {figures['peak_rss_mib']:7.1f} MiB"
        )
        shutil.rmtree(folder, ignore_errors=True)


def validation_part(work: Path, variants: dict[str, Path], files: int) -> None:
    output = work / "run-output"
    make_run_output(output, files)
    print(f"\nvalidation: a run of {files} files (rows file and results/ on disk)")
    for name, root in variants.items():
        figures = run(VALIDATION, root, output, files)
        print(
            f"  {name:7} {figures['seconds']:7.2f} s  {figures['cpu_seconds']:7.2f} s CPU  peak RSS "
            f"{figures['peak_rss_mib']:7.1f} MiB (after imports: {figures['rss_before_mib']:.1f})"
        )
    shutil.rmtree(output, ignore_errors=True)


def registration_part(work: Path, variants: dict[str, Path], files: int, script: Path) -> None:
    folder = work / "datastore" / "r-script-inputs" / "big"
    for i in range(files):
        sub = folder / f"camera-{i % 17:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"img_{i:07d}.png").touch()
    print(f"\nregistration: a folder of {files} files, local engine")
    for name, root in variants.items():
        shutil.rmtree(work / "datastore" / ".azureml-local", ignore_errors=True)  # no earlier version to reuse
        figures = run(REGISTRATION, root, work / "datastore")
        print(
            f"  {name:7} {figures['seconds']:7.2f} s  {figures['cpu_seconds']:7.2f} s CPU  peak RSS "
            f"{figures['peak_rss_mib']:7.1f} MiB"
        )
    print(
        f"\nstart-up: a local run over those {files} files, 2 processes, until the first file's outputs are in place "
        "(the dataset registered already)"
    )
    for name, root in variants.items():
        figures = run(START, root, work / "datastore", root / "include", script)
        print(f"  {name:7} {figures['seconds_to_first_file']:7.2f} s to the first file")
        shutil.rmtree(work / "datastore" / "r-script-outputs", ignore_errors=True)
    shutil.rmtree(work / "datastore", ignore_errors=True)


def engine_part(work: Path, script: Path, sizes: list[int]) -> None:
    """Whole local runs of ``sizes`` files (this checkout): CPU per file and peak memory (see the module)."""
    if not sizes:
        return
    print("\nengine: whole local runs, 2 processes, a trivial R script, through batch_wrapper.py")
    for files in sizes:
        inputs = work / f"engine-in-{files}"
        for i in range(files):
            sub = inputs / f"camera-{i % 17:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"img_{i:07d}.png").touch()
        size = default_mini_batch_size(files, 2)
        figures = run(ENGINE, REPO, inputs, work / f"engine-out-{files}", REPO / "include", script, files, size)
        print(
            f"  {files:>9} files (mini-batches of {size}): {figures['seconds']:7.1f} s, "
            f"{figures['cpu_us_per_file']:6.0f} us CPU per file; peak RSS: controller {figures['controller_mib']:6.1f} "
            f"MiB, worker {figures['worker_mib']:6.1f} MiB, R {figures['r_mib']:6.1f} MiB"
        )
        shutil.rmtree(inputs, ignore_errors=True)
        shutil.rmtree(work / f"engine-out-{files}", ignore_errors=True)


if __name__ == "__main__":
    main()
