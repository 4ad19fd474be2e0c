"""The README's "Install into your Airflow", as a team with a stock Airflow follows it: its commands, taken from the
README (so the docs cannot drift), run with bash in a fresh venv holding only ``pip install apache-airflow==3.3.2``.

Each variant installs the wheel with one extra, checks that ``pip check`` stays clean (nothing downgraded into a
conflict), creates the connection in the metadata database through the CLI, and runs the example DAG with
``airflow dags test`` while ``load_examples`` is on (a new AIRFLOW_HOME's default): exactly one ``r_parallel_batch``
exists and no task needed a retry. The only change to the README's text: its example folder ``/data/datastore``
becomes the test's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# each test's limit covers its own waits: a venv (300 s), the install script (1,500 s) and the DAG run (600 s)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(2400 + 120),
]
AIRFLOW = "apache-airflow==3.3.2"  # the Airflow a team already runs: what pip gives, not our lock
DATASTORE_IN_README = "/data/datastore"
# what `uv build` needs from a checkout (the tracked files; a copy, so the test writes nothing into the repository)
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "plugins", "include", "dags")


def readme_block(marker: str) -> str:
    """The bash block that follows ``<!-- <marker>: ... -->`` in the README."""
    text = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- {re.escape(marker)}:[^>]*-->\s*```bash\n(.*?)```", text, re.S)
    assert found, f"README.md has no bash block after a <!-- {marker}: ... --> comment"
    return found.group(1)


def _bash(script: str, *, env: dict[str, str], cwd: Path, timeout: float = 1500) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"exited {done.returncode}:\n{script}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("checkout")
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, copy / name)
    return copy


def test_the_readme_blocks_are_there_and_name_the_wheel_of_this_version() -> None:
    from azureml_parallel_r import __version__

    install = readme_block("install")
    assert f"dist/azureml_parallel_r-{__version__}-py3-none-any.whl[v2]" in install
    assert "uv build --wheel" in install and "pip check" in install
    assert "airflow connections add azureml_parallel_r_default" in readme_block("first-run")


@pytest.mark.parametrize("extra", ["v2", "v1"])
def test_the_readme_install_into_a_stock_airflow(extra: str, checkout: Path, tmp_path: Path) -> None:
    from azureml_parallel_r import __version__

    venv, home, store, tools = (tmp_path / name for name in ("venv", "home", "datastore", "tools"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    tools.mkdir()  # the README's `uv`, and nothing else of the project's venv, on PATH
    (tools / "uv").symlink_to(Path(sys.executable).parent / "uv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "PATH": f"{venv / 'bin'}:{tools}:{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "True",
        }
    )
    _bash(f"pip install --quiet {AIRFLOW} && pip check", env=env, cwd=tmp_path)
    stock = _freeze(env, tmp_path)
    install = readme_block("install").replace(".whl[v2]", f".whl[{extra}]")
    printed = _bash(install, env=env, cwd=checkout)
    assert "No broken requirements found." in printed
    assert re.search(rf"^azureml-parallel-r\s*\|.*\|\s*{re.escape(__version__)}\s*$", printed, re.M), printed
    after = _freeze(env, tmp_path)
    # the extra brings its SDK; Airflow itself and OpenTelemetry are not moved to other versions
    assert after["apache-airflow-core"] == stock["apache-airflow-core"]
    assert {"v2": "azure-ai-ml", "v1": "azureml-core"}[extra] in after
    assert after["opentelemetry-api"].split(".")[:2] == stock["opentelemetry-api"].split(".")[:2]

    _bash("airflow db migrate", env=env, cwd=tmp_path)
    first_run = readme_block("first-run").replace(DATASTORE_IN_README, str(store))
    _bash(first_run, env=env, cwd=tmp_path)

    # every bundle parsed once, as the scheduler's DAG processor does: the dags folder, Airflow's examples and the
    # providers' example bundles (Airflow 3.3 loads a provider's `example_dags` package as one)
    _bash("airflow dag-processor --num-runs 1", env=env, cwd=tmp_path)
    listed = _bash("airflow dags list --output json", env=env, cwd=tmp_path)
    dags = json.loads(listed[listed.index("[{") :])
    ours = [d for d in dags if d["dag_id"] == "r_parallel_batch"]
    assert len(ours) == 1 and ours[0]["fileloc"] == str(home / "dags" / "r_parallel_batch.py"), ours
    bundles = {d["bundle_name"] for d in dags}
    assert {"dags-folder", "example_dags"} <= bundles and not [b for b in bundles if "azureml" in b], bundles
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


@pytest.fixture(scope="module")
def wheel(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(Path(sys.executable).parent / "uv"), "build", "--wheel", "--out-dir", str(out), str(checkout)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("azureml_parallel_r-*.whl")
    return built


@pytest.mark.parametrize("python", ["3.12", "3.13"])
def test_the_wheel_with_v2_resolves_next_to_airflow_on_newer_pythons(python: str, wheel: Path, tmp_path) -> None:
    """No 3.12 or 3.13 interpreter is installable here: pip resolves for one (binary wheels only, as the target's
    pip would have to), and uv, which evaluates environment markers for the target, shows that [v1] adds nothing
    there. (pip evaluates markers with the running interpreter, so it cannot show the second.)"""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{os.environ['PATH']}"
    report = tmp_path / "report.json"
    # the pip a venv brings here (23.2) gives up on OpenTelemetry's pins without sdists; a current one resolves
    _bash("pip install --quiet --upgrade pip", env=env, cwd=tmp_path)
    target = tmp_path / "target"
    _bash(
        f"pip install --quiet --dry-run --ignore-installed --python-version {python} --only-binary=:all: "
        f"--target {target} --report {report} {AIRFLOW} '{wheel}[v2]'",
        env=env,
        cwd=tmp_path,
    )
    installs = json.loads(report.read_text())["install"]
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    assert chosen["apache-airflow"] == "3.3.2" and "azure-ai-ml" in chosen and "azureml-parallel-r" in chosen
    assert chosen["opentelemetry-sdk"].startswith("1.45.")
    compiled = tmp_path / "v1.txt"
    (tmp_path / "v1.in").write_text(f"{AIRFLOW}\nazureml-parallel-r[v1] @ {wheel.as_uri()}\n")
    subprocess.run(
        [
            str(Path(sys.executable).parent / "uv"),
            "pip",
            "compile",
            "--quiet",
            "--python-version",
            python,
            "--only-binary",
            ":all:",
            str(tmp_path / "v1.in"),
            "-o",
            str(compiled),
        ],
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )
    pinned = compiled.read_text()
    assert "apache-airflow==3.3.2" in pinned and "azureml-core" not in pinned and "azureml-pipeline" not in pinned


def _freeze(env: dict[str, str], cwd: Path) -> dict[str, str]:
    frozen = _bash("pip list --format json", env=env, cwd=cwd)
    return {p["name"].lower(): p["version"] for p in json.loads(frozen[frozen.index("[") :])}
