"""Parse cost of dags/r_parallel_batch.py on top of importing airflow.sdk.

    .venv/bin/python bench/bench_dag_parse.py [--rounds 15]

Each round starts three fresh interpreters, interleaved. Each imports airflow.sdk, then executes one DAG
file the way the DAG processor does (runpy): nothing (baseline), a minimal ``@daily`` DAG with one task
(what any scheduled DAG file pays: Airflow builds its timetable and asset classes on the first DAG of a
process), or dags/r_parallel_batch.py. Reported: each file's execution time after airflow.sdk, and the
project DAG's cost beyond the minimal DAG (target: under 100 ms on top of airflow.sdk). Also lists the
top-level packages the DAG file pulls in, so heavy imports (azureml, the engine) would show up at once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "r_parallel_batch.py"
MINIMAL_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.sdk.bases.operator import BaseOperator

with DAG(dag_id="minimal", schedule="@daily", start_date=pendulum.datetime(2026, 11, 1, tz="UTC"), catchup=True):
    BaseOperator(task_id="noop")
"""
PROBE = r"""
import json, runpy, sys, time
started = time.perf_counter()
import airflow.sdk
from airflow.sdk import DAG, Asset, Param
baseline = time.perf_counter()
before = set(sys.modules)
if sys.argv[1] != "-":
    runpy.run_path(sys.argv[1])
done = time.perf_counter()
print(json.dumps({"sdk": baseline - started, "file": done - baseline,
                  "new_modules": sorted(m for m in set(sys.modules) - before if "." not in m)}))
"""


def probe(dag_file: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, dag_file], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        minimal = Path(folder) / "minimal_dag.py"
        minimal.write_text(MINIMAL_DAG)
        files = {"nothing": "-", "minimal @daily DAG": str(minimal), "r_parallel_batch.py": str(DAG_FILE)}
        times: dict[str, list[float]] = {name: [] for name in files}
        sdk: list[float] = []
        new_modules: set[str] = set()
        for _ in range(args.rounds):
            for name, path in files.items():
                result = probe(path)
                times[name].append(result["file"])
                sdk.append(result["sdk"])
                if name == "r_parallel_batch.py":
                    new_modules.update(result["new_modules"])

    def ms(values: list[float]) -> float:
        return 1000 * statistics.median(values)

    print(f"{args.rounds} rounds, fresh interpreters, medians")
    print(f"import airflow.sdk:                                   {ms(sdk):7.1f} ms")
    for name in files:
        print(f"then execute {name + ':':40s} {ms(times[name]):7.1f} ms")
    extra = ms(times["r_parallel_batch.py"]) - ms(times["minimal @daily DAG"])
    print(f"r_parallel_batch.py beyond a minimal @daily DAG:      {extra:7.1f} ms")
    print(f"top-level packages the DAG file adds: {', '.join(sorted(new_modules)) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
