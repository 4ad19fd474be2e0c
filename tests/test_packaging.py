"""The distribution: a wheel that installs into an existing Airflow like a provider, carries what the compute needs,
and runs the example DAG with no checkout, no plugins/ folder and no PYTHONPATH: only the wheel and the locked
Airflow in a fresh venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SHIPPED, SHIPPED_INCLUDE

# the wheel's build (900 s, shared by the module), a venv and its install (900 s each) and the DAG run (900 s)
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]
UV = Path(sys.executable).parent / "uv"  # the uv of the venv the tests run in (the dev group installs it)
LOCKED = REPO / "requirements" / "airflow-image.txt"
DATE = "2026-11-09"
IMPORTED_DAG = "from azureml_parallel_r.examples.r_parallel_batch import dag  # noqa: F401 (an Airflow DAG)\n"


def _run(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([str(UV), "build", "--wheel", "--out-dir", str(out), str(REPO)], cwd=REPO)
    (built,) = out.glob("azureml_parallel_r-*.whl")
    return built


def test_the_wheel_carries_the_compute_code_the_example_dag_and_the_provider_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    shipped = {n for n in names if n.startswith("azureml_parallel_r/shipped/")}
    assert shipped == {f"azureml_parallel_r/shipped/{p}" for p in (*SHIPPED_INCLUDE, "environment/Dockerfile")}
    assert {p for p in SHIPPED if p.startswith("azureml_parallel_r/")} <= names  # the compute package
    assert {
        "azureml_parallel_r/examples/r_parallel_batch.py",
        "azureml_parallel_r/examples/r_parallel_batch_results.py",
    } <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "plugins/"))]
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = azureml_parallel_r.get_provider_info:get_provider_info" in entry_points
    # the plugin (extra links, run report) through the entry point Airflow always loads, with the report's page
    assert "[airflow.plugins]" in entry_points
    assert "azureml_parallel_r = azureml_parallel_r.plugin:AzureMLParallelRPlugin" in entry_points
    assert {f"azureml_parallel_r/report/static/{name}" for name in ("report.html", "report.js", "report.css")} <= names


def test_a_wheel_built_from_the_sdist_carries_the_same_files_and_both_pass_twine_check(
    wheel: Path, tmp_path: Path
) -> None:
    """``uv build`` (and pip from an sdist) builds the wheel from the sdist, which carries include/ but not the
    repository's link to it: the compute's files must reach the wheel either way. Both distributions pass ``twine
    check --strict`` (RELEASING.md's step: the metadata and the README as PyPI renders them)."""
    _run([str(UV), "build", "--out-dir", str(tmp_path), str(REPO)], cwd=REPO)
    (from_sdist,) = tmp_path.glob("azureml_parallel_r-*.whl")
    with zipfile.ZipFile(wheel) as direct, zipfile.ZipFile(from_sdist) as built:
        assert sorted(built.namelist()) == sorted(direct.namelist())
    (sdist,) = tmp_path.glob("azureml_parallel_r-*.tar.gz")
    checked = _run([str(Path(sys.executable).parent / "twine"), "check", "--strict", str(sdist), str(from_sdist)])
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_a_fresh_airflow_with_only_the_wheel_lists_the_provider_and_runs_the_example_dag(wheel, tmp_path) -> None:
    venv = tmp_path / "venv"
    _run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    # the wheel alone, pinned to the locked set (Airflow 3.3.2 and what it brings); no Azure ML SDK extras
    _run([str(UV), "pip", "install", "--quiet", "--python", str(python), str(wheel), "--constraint", str(LOCKED)])
    home, dags, plugins, store = (tmp_path / name for name in ("home", "dags", "plugins", "datastore"))
    for folder in (home, dags, plugins, store):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT": json.dumps(
                {
                    "conn_type": "azureml_parallel_r",
                    "extra": {"engine": "local", "datastore_root": str(store), "process_count_per_node": 2},
                }
            ),
        }
    )
    # neither OpenLineage nor an Azure ML SDK is there: the local engine's DAG needs none of them
    absent = ("openlineage", "airflow.providers.openlineage", "azure.ai.ml", "azureml.core")
    probe = f"""
import importlib.util
found = []
for name in {absent!r}:
    try:
        found += [name] if importlib.util.find_spec(name) else []
    except ModuleNotFoundError:  # its parent package is not there either
        pass
print(found)
"""
    assert _run([str(python), "-c", probe], env=env, cwd=tmp_path).stdout.strip() == "[]"
    where = _run(
        [str(python), "-c", "import azureml_parallel_r.shipped_code as s; print(s.INCLUDE_DIR)"], env=env, cwd=tmp_path
    ).stdout.strip()
    assert where == str(venv / "lib" / "python3.11" / "site-packages" / "azureml_parallel_r" / "shipped")
    example = _run(
        [
            str(python),
            "-c",
            "import importlib.resources as r; "
            "print(r.files('azureml_parallel_r') / 'examples' / 'r_parallel_batch.py')",
        ],
        env=env,
        cwd=tmp_path,
    ).stdout.strip()
    shutil.copy(example, dags / "r_parallel_batch.py")
    inputs = str(store / "r-script-inputs" / DATE)
    _run([str(python), "-m", "azureml_parallel_r.examples.samples", inputs, "--images", "2"], env=env, cwd=tmp_path)
    # the other way: a DAG file of the user's own that imports the example from the package
    mine = tmp_path / "my_dags"
    mine.mkdir()
    # Airflow's safe mode parses only files that mention both "airflow" and "dag": the comment says the first
    (mine / "batch.py").write_text(IMPORTED_DAG)
    bag = (
        "from airflow.dag_processing.dagbag import DagBag; "
        f"b = DagBag(dag_folder={str(mine)!r}); print(b.import_errors, b.dag_ids)"
    )
    assert _run([str(python), "-c", bag], env=env, cwd=tmp_path).stdout.strip().splitlines()[-1] == (
        "{} ['r_parallel_batch']"
    )
    airflow = str(venv / "bin" / "airflow")
    listed = _run([airflow, "providers", "list", "--output", "json"], env=env, cwd=tmp_path).stdout
    (provider,) = [p for p in json.loads(listed[listed.index("[") :]) if p["package_name"] == "azureml-parallel-r"]
    assert provider["version"] == "0.1.0"
    hooks = _run([airflow, "providers", "hooks", "--output", "json"], env=env, cwd=tmp_path).stdout
    assert "azureml_parallel_r.hooks.parallel_run.AzureMLParallelRunHook" in hooks
    plugins_listed = _run([airflow, "plugins", "--output", "json"], env=env, cwd=tmp_path).stdout
    (plugin,) = [
        p for p in json.loads(plugins_listed[plugins_listed.index("[") :]) if p["name"] == "azureml_parallel_r"
    ]
    assert "azureml_parallel_r.report.app" in json.dumps(plugin) or plugin.get("fastapi_apps")
    _run([airflow, "db", "migrate"], env=env, cwd=tmp_path)
    _run([airflow, "dags", "test", "r_parallel_batch", DATE], env=env, cwd=tmp_path)
    (output,) = (store / "r-script-outputs" / DATE).iterdir()
    report = json.loads((output / "validation.json").read_text())
    assert report["passed"] and report["counts"]["succeeded"] == 6 and report["counts"]["failed"] == 1
    assert (output / "results" / "camera-a" / "img_0000.png" / "thumbnail.png").is_file()
