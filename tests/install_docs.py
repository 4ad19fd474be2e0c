"""docs/installing.md as a team with a stock Airflow follows it: its blocks, taken from the page (so the docs cannot
drift), run with bash in a fresh venv holding only Airflow, for one Airflow version, one Python and one extra.

Shared by the install tests (tests/test_install_into_airflow.py and the modules beside it), which split the matrix
over modules so that pytest-xdist runs them side by side.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import REPO

DOCS = REPO / "docs" / "installing.md"
DATASTORE_IN_DOCS = "/data/datastore"
# what building the wheel needs from a checkout (tracked files; a copy: the tests write nothing into the repository)
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "plugins", "include", "dags")
# each case's limit covers its own waits: a venv (300 s), Airflow's install (900 s), the docs' install (1,500 s), the
# DAG run (900 s) and the checks after it
CASE_TIMEOUT = 300 + 900 + 1500 + 900 + 300
# the report's summary of the DAG run the first-run block made, read as the API server reads it (its secrets backend
# is the metadata database only in a "server" process)
REPORT_CHECK = """
import json
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from sqlalchemy import select
from azureml_parallel_r.report.app import create_app
from azureml_parallel_r.report.content import summary
from azureml_parallel_r.report.services import ReadServices
from azureml_parallel_r.report.sources import read_dag_run

create_app()
with create_session() as session:
    (run_id,) = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == "r_parallel_batch")).all()
page = summary(read_dag_run("r_parallel_batch", run_id, for_summary=True), ReadServices())
print("REPORT " + json.dumps(page, default=str))
"""


@dataclass(frozen=True)
class Stock:
    """How the stock Airflow of a case is installed: plain pip, or (an Airflow that its dependencies' newer
    releases break) as its constraints file would pin it, by upload date (docs/installing.md says why)."""

    airflow: str
    exclude_newer: str | None = None

    def install(self, venv: Path, env: dict[str, str], cwd: Path) -> None:
        if self.exclude_newer is None:
            bash(f"pip install --quiet apache-airflow=={self.airflow}", env=env, cwd=cwd, timeout=900)
        else:
            uv = Path(sys.executable).parent / "uv"
            python = venv / "bin" / "python"
            command = f"'{uv}' pip install --quiet --python '{python}' apache-airflow=={self.airflow}"
            bash(f"{command} --exclude-newer {self.exclude_newer}", env=env, cwd=cwd, timeout=900)


def docs_block(marker: str) -> str:
    """The bash block that follows ``<!-- <marker>: ... -->`` in docs/installing.md."""
    found = re.search(rf"<!-- {re.escape(marker)}:[^>]*-->\s*```bash\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"docs/installing.md has no bash block after a <!-- {marker}: ... --> comment"
    return found.group(1)


def documented_changes(extras: str) -> set[tuple[str, str, str]]:
    """The table after ``<!-- changes: <extras> -->``: (package, stock version, version after the install)."""
    text = DOCS.read_text()
    marker = f"<!-- changes: {extras} -->"
    assert marker in text, f"docs/installing.md has no {marker} table"
    rows = set()
    for line in text[text.index(marker) + len(marker) :].lstrip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        package, before, after = (cell.strip() for cell in line.strip("|").split("|")[:3])
        rows.add((str(canonicalize_name(package)), before, after))
    return rows


def bash(script: str, *, env: dict[str, str], cwd: Path, timeout: float = 1500) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"exited {done.returncode}:\n{script}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def checkout_copy(into: Path) -> Path:
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True)
        else:
            shutil.copy2(source, into / name)
    return into


def interpreter(version: str) -> str:
    """A Python ``version`` interpreter: the one running the tests, pyenv's, or one on PATH that runs (pyenv's shims
    on PATH fail where no pyenv version selects them); the test is skipped, saying so, where there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidates = [
        *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))),
        *filter(None, [shutil.which(f"python{version}")]),
    ]
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    pytest.skip(f"no Python {version} interpreter here (pyenv's, or python{version} on PATH)")


def installed(env: dict[str, str], cwd: Path) -> dict[str, str]:
    frozen = bash("pip list --format json", env=env, cwd=cwd)
    return {str(canonicalize_name(p["name"])): p["version"] for p in json.loads(frozen[frozen.index("[") :])}


def run_the_install_docs(
    *, python: str, stock: Stock, extras: str, checkout: Path, tmp_path: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh venv of ``python`` with only the stock Airflow, then the page's blocks as written (the wheel with
    ``extras``; the example folder becomes the test's own), and what a team checks after them: ``pip check``, the
    provider listed, one ``r_parallel_batch`` in the dags folder, its run green with no retry, validation's counts,
    and the run report's summary. Returns the packages before and after the install block."""
    from azureml_parallel_r import __version__

    venv, home, store = (tmp_path / name for name in ("venv", "home", "datastore"))
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "UV_"))}
    env.update(
        {
            "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "True",
        }
    )
    stock.install(venv, env, tmp_path)
    bash("pip check", env=env, cwd=tmp_path)
    before = installed(env, tmp_path)
    install = docs_block("install").replace(".whl[sdk-v2]", f".whl[{extras}]")
    printed = bash(install, env=env, cwd=checkout)
    assert "No broken requirements found." in printed
    assert re.search(rf"^azureml-parallel-r\s*\|.*\|\s*{re.escape(__version__)}\s*$", printed, re.M), printed
    after = installed(env, tmp_path)
    assert after["apache-airflow"] == stock.airflow and after["apache-airflow-core"] == before["apache-airflow-core"]
    assert "azure-ai-ml" in after if "sdk-v2" in extras else "azure-ai-ml" not in after
    v1_python = (
        subprocess.run(
            [python, "-c", "import sys; print(sys.version_info < (3, 12))"], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "True"
    )
    assert ("azureml-core" in after) == ("sdk-v1" in extras and v1_python)  # SDK v1 stops at Python 3.11

    first_run = docs_block("first-run").replace(DATASTORE_IN_DOCS, str(store))
    bash(first_run, env=env, cwd=tmp_path, timeout=900)
    # every bundle parsed once, as the scheduler's DAG processor does: the dags folder, Airflow's examples and the
    # providers' example bundles (Airflow 3.3 loads a provider's `example_dags` package as one)
    bash("airflow dag-processor --num-runs 1", env=env, cwd=tmp_path, timeout=600)
    listed = bash("airflow dags list --output json", env=env, cwd=tmp_path)
    dags = json.loads(listed[listed.index("[{") :])
    ours = [d for d in dags if d["dag_id"] == "r_parallel_batch"]
    assert len(ours) == 1 and ours[0]["fileloc"] == str(home / "dags" / "r_parallel_batch.py"), ours
    with sqlite3.connect(home / "airflow.db") as db:
        tries = db.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", ("r_parallel_batch",)
        ).fetchall()
        retried = db.execute(
            "SELECT count(*) FROM task_instance_history WHERE dag_id = ?", ("r_parallel_batch",)
        ).fetchone()[0]
    assert sorted(tries) == sorted(
        (t, "success", 1) for t in ("register_dataset", "submit_pipeline", "wait_for_pipeline", "validate_outputs")
    ), tries
    assert retried == 0
    (output,) = (store / "r-script-outputs" / "2026-11-09").iterdir()
    report = json.loads((output / "validation.json").read_text())
    assert report["passed"] and report["counts"]["succeeded"] == 8 and report["counts"]["failed"] == 1
    (tmp_path / "report_check.py").write_text(REPORT_CHECK)
    printed = bash(
        "_AIRFLOW_PROCESS_CONTEXT=server python report_check.py", env=env, cwd=tmp_path, timeout=300
    ).splitlines()
    (line,) = [line for line in printed if line.startswith("REPORT ")]
    page = json.loads(line.removeprefix("REPORT "))
    assert page["problems"] == [] and page["dag_run_state"] == "success", page["problems"]
    assert page["validation"]["passed"] and page["validation"]["counts"]["failed"] == 1
    return before, after


def changed_packages(before: dict[str, str], after: dict[str, str]) -> set[tuple[str, str, str]]:
    """(package, before, after) for every package the install moved to another version; none may be removed."""
    assert not set(before) - set(after), f"the install removed {sorted(set(before) - set(after))}"
    return {(name, version, after[name]) for name, version in before.items() if after[name] != version}


def assert_documented(changes: set[tuple[str, str, str]], extras: str) -> None:
    documented = documented_changes(extras)
    assert changes == documented, (
        f"pip changed other packages than docs/installing.md's <!-- changes: {extras} --> table says: "
        f"not in the table {sorted(changes - documented)}, in the table but not changed {sorted(documented - changes)}"
    )
