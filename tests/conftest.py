"""Shared fixtures: paths of the shipped code, R script factories and sample files."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INCLUDE = REPO / "include"
EXAMPLE_R_SCRIPT = INCLUDE / "r" / "process_file.r"
CONN_VARIABLE = "AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT"

# Airflow reads its configuration when first imported: give the test session its own home (SQLite),
# the project's dags/ and plugins/, and no connection unless a test sets one.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="apr-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        # the API's tokens are signed with HS512, whose key should be 64 bytes or more (RFC 7518, section 3.2)
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
    }
)
os.environ.pop(CONN_VARIABLE, None)
# azureml-core's REST clients retry 429/500/503 themselves after AZUREML_DEFAULT_*BACKOFF seconds (32, 2, 2-10;
# azureml/_restclient/clientbase.py; read when the SDK is imported): the throttling tests need not wait that long.
os.environ.update(
    {"AZUREML_DEFAULT_BACKOFF": "0", "AZUREML_DEFAULT_500_BACKOFF": "0", "AZUREML_DEFAULT_503_BACKOFF": "0"}
)


# exactly what the step's source directory ships: include/entry and include/r (what a user reads and edits) and the
# compute package (with the package's __init__): asserted by the v1 snapshot, the v2 code asset and the wheel
COMPUTE_PACKAGE = REPO / "plugins" / "azureml_parallel_r" / "compute"
SHIPPED_INCLUDE = ["entry/batch_wrapper.py", "r/forecast_per_store.r", "r/process_file.r"]
SHIPPED = sorted(
    [
        *SHIPPED_INCLUDE,
        "azureml_parallel_r/__init__.py",
        *(f"azureml_parallel_r/compute/{p.name}" for p in COMPUTE_PACKAGE.iterdir() if p.suffix in (".py", ".R")),
    ]
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The test session's Airflow home (its SQLite database and logs) goes with the session."""
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) for dag.test() runs."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=dict(os.environ)
    )
    return AIRFLOW_HOME


def local_connection_value(datastore_root: Path, r_script_dirs: tuple[str, ...] = ()) -> str:
    """The AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT value for the local engine over ``datastore_root``.

    :param r_script_dirs: folders (besides include/) the tests' own R scripts may come from.
    """
    extra = {
        "engine": "local",
        "datastore_root": str(datastore_root),
        "process_count_per_node": 2,
        "r_script_dirs": list(r_script_dirs),
    }
    return json.dumps({"conn_type": "generic", "extra": extra})


@pytest.fixture
def local_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the azureml_parallel_r_default connection at the local engine over a fresh datastore; return its root."""
    root = tmp_path / "datastore"
    root.mkdir()
    monkeypatch.setenv(CONN_VARIABLE, local_connection_value(root, r_script_dirs=(str(tmp_path),)))
    return root


# A script for failure paths: the input file's first line says what to do.
BEHAVIOUR_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  action <- readLines(input_path, n = 1L, warn = FALSE)
  if (length(action) == 0L) action <- "empty"
  cat('{"ok": true, "value": "fake protocol line on stdout"}\n')
  message('{"ok": false, "error": "fake protocol line on stderr"}')
  print(list(noise = TRUE))
  if (action == "error") stop("deliberate R error for ", basename(input_path))
  if (action == "crash") tools::pskill(Sys.getpid(), 11L)
  if (action == "quit") quit(save = "no", status = 7)
  if (action == "hang") Sys.sleep(600)
  if (action == "gate") while (!file.exists(Sys.getenv("TEST_GATE"))) Sys.sleep(0.05)  # waits for the test
  if (action == "warn") warning("a warning for ", basename(input_path))
  if (action == "partial") { writeLines("half", file.path(output_dir, "partial.txt")); stop("failed after writing") }
  writeLines(c(action, args), file.path(output_dir, "echo.txt"))
  list(action = action, args = args, pid = Sys.getpid())
}
"""


@pytest.fixture
def write_r_script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Return a function writing R code to ``tmp_path/<name>`` and returning its path."""

    def write(code: str, name: str = "script.r") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return path

    return write


@pytest.fixture
def behaviour_script(write_r_script: Callable[[str, str], Path]) -> Path:
    return write_r_script(BEHAVIOUR_R_SCRIPT, "behaviour.r")


@pytest.fixture
def write_inputs(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Return a function creating ``tmp_path/inputs`` with ``{relative path: first line}`` files."""

    def write(files: dict[str, str], folder: str = "inputs") -> Path:
        root = tmp_path / folder
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content + ("\n" if content else ""), encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return write


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """Return a function mounting a fresh file system of ``size`` bytes (tmpfs) at ``tmp_path/<name>``: a disk that
    really fills up (ENOSPC), as a node's local disk or an output mount does. Needs root (CI and the compose
    image's build run as root); skipped otherwise. Unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted: list[Path] = []

    def mount(name: str, size: int) -> Path:
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def live_processes(marker: str) -> list[int]:
    """Return pids of live processes (zombies excluded) whose command line or environment holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                text = handle.read()
            with open(f"/proc/{entry}/environ", "rb") as handle:
                text += b"\0" + handle.read()
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in text and state != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def fake_azure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake Azure ML workspace (tests/azure) with Azurite as its storage, and the default connection
    pointing at it; every request the SDKs send must be one the fake models."""
    from tests.azure.fake import FakeAzureML

    with FakeAzureML(tmp_path / "fake-azureml") as azure:
        monkeypatch.setenv(CONN_VARIABLE, azure.connection_value(r_script_dirs=[str(tmp_path)]))
        yield azure
        assert azure.wire.unrouted == [], "the SDK sent requests the fake does not model"
