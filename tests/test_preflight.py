"""The preflight (``python -m azureml_parallel_r.preflight``, the connection's Test button) against the fake workspace:
a workspace that passes on both engines, and each check failing on its own, saying what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.preflight import main as preflight
from tests.azure.storage_roles import READER
from tests.azure.workspace import CLIENT_ID
from tests.conftest import CONN_VARIABLE

pytestmark = pytest.mark.integration
ENGINES = ("azureml", "azureml_v2")
NAMES = ["workspace", "datastore", "storage", "compute", "environment", "R script"]


def _checks(fake_azure, monkeypatch, engine: str, argv: list[str] = (), **extra) -> tuple[int, dict[str, str]]:
    """Run the preflight's command on the fake's connection; its exit status and its lines by check name."""
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine=engine, **extra))
    capsys = monkeypatch.capsys
    status = preflight(list(argv))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("ok   ", "FAIL "))]
    by_name = {}
    for line in lines:
        verdict, rest = line[:4].strip(), line[5:]
        name = next(n for n in NAMES if rest.startswith(n + ":"))
        by_name[name] = f"{verdict} {rest[len(name) + 2 :]}"
    assert list(by_name) == NAMES, lines
    return status, by_name


@pytest.fixture
def run(fake_azure, monkeypatch, capsys):
    monkeypatch.capsys = capsys
    return lambda engine, argv=(), **extra: _checks(fake_azure, monkeypatch, engine, argv, **extra)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_workspace_that_has_everything_passes_every_check(run, engine) -> None:
    status, checks = run(engine, datastore="identitystore")
    assert status == 0 and all(line.startswith("ok ") for line in checks.values()), checks
    assert "identity-based (no credential kept)" in checks["datastore"]
    assert checks["compute"] == "ok r-cluster: STANDARD_D4S_V3, 0 to 4 nodes, managed identity: system-assigned"
    assert "the image is built from include/environment/Dockerfile (R 4.1.2)" in checks["environment"]


@pytest.mark.parametrize("engine", ENGINES)
def test_each_failing_check_says_what_to_do(run, fake_azure, engine, tmp_path: Path) -> None:
    # the datastore does not exist: storage cannot be asked
    status, checks = run(engine, datastore="nostore")
    assert status == 1 and checks["datastore"].startswith("FAIL") and "nostore" in checks["datastore"]
    assert "set the connection's datastore" in checks["datastore"]
    assert checks["storage"] == "FAIL not checked: no datastore" and checks["workspace"].startswith("ok")
    # the connection's identity may read the identity-based datastore but not write: the role it needs
    fake_azure.roles.assigned[CLIENT_ID] = READER
    status, checks = run(engine, datastore="identitystore")
    assert status == 1 and "AuthorizationPermissionMismatch" in checks["storage"]
    assert "grant the connection's identity Storage Blob Data Contributor" in checks["storage"]
    del fake_azure.roles.assigned[CLIENT_ID]
    # a cluster that does not exist, and one without the managed identity an identity-based datastore needs
    status, checks = run(engine, compute_target="no-cluster")
    assert status == 1 and "no-cluster" in checks["compute"] and "create the cluster" in checks["compute"]
    status, checks = run(engine, datastore="identitystore", compute_target="cpu-cluster")
    assert status == 1 and "managed identity: none" in checks["compute"]
    assert "enable a managed identity on the cluster" in checks["compute"]
    if engine == "azureml_v2":  # unless the job reads as the user who submits it
        status, checks = run(
            engine, datastore="identitystore", compute_target="cpu-cluster", job_identity="user_identity"
        )
        assert checks["compute"].startswith("ok"), checks["compute"]
    # a registered environment that is not there
    status, checks = run(engine, environment_name="no-environment:3")
    assert (
        status == 1
        and "no-environment" in checks["environment"]
        and "register the environment" in checks["environment"]
    )
    # a script that loads a package nobody declared, and one that does not parse
    script = tmp_path / "uses_glmnet.r"
    script.write_text("library(glmnet)\nprocess_file <- function(a, b, c) Matrix::Matrix(1)\n")
    status, checks = run(engine, ["--r-script", str(script)], r_script_dirs=[str(tmp_path)])
    assert status == 1 and "loads glmnet, declared nowhere" in checks["R script"] and "Matrix" not in checks["R script"]
    status, checks = run(engine, ["--r-script", str(script), "--r-package", "glmnet"], r_script_dirs=[str(tmp_path)])
    assert checks["R script"].startswith("ok")
    script.write_text("process_file <- function(a, b, c) {\n")
    status, checks = run(engine, ["--r-script", str(script)], r_script_dirs=[str(tmp_path)])
    assert status == 1 and "does not parse" in checks["R script"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wrong_secret_fails_the_workspace_check_and_the_rest_is_not_asked(
    run, fake_azure, monkeypatch, engine
) -> None:
    import json

    connection = json.loads(fake_azure.connection_value(engine=engine))
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({**connection, "password": "not-the-secret"}))
    status = preflight([])
    lines = [line for line in monkeypatch.capsys.readouterr().out.splitlines() if line.startswith(("ok   ", "FAIL "))]
    assert status == 1 and lines[0].startswith("FAIL workspace:") and "AADSTS7000215" in lines[0]
    assert "its identity's credentials" in lines[0]
    assert all(line.endswith("not checked: the workspace did not answer") for line in lines[1:5]), lines


def test_the_test_button_runs_the_preflight(fake_azure, monkeypatch) -> None:
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine="azureml_v2"))
    ok, message = AzureMLParallelRunHook().test_connection()
    assert ok and [line.split(":")[0] for line in message.splitlines()] == [f"ok   {n}" for n in NAMES]


def _readme_block(after: str) -> list[str]:
    from tests.conftest import REPO

    text = (REPO / "docs" / "workspace.md").read_text(encoding="utf-8")
    start = text.index("```text\n", text.index(after)) + len("```text\n")
    return text[start : text.index("```", start)].splitlines()


def test_the_readme_shows_what_the_preflight_prints(fake_azure, monkeypatch, capsys) -> None:
    """Docs that cannot drift: docs/workspace.md's two blocks are this run's lines."""
    monkeypatch.setenv(CONN_VARIABLE, fake_azure.connection_value(engine="azureml_v2", datastore="identitystore"))
    assert preflight([]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("ok   ", "FAIL "))]
    assert _readme_block("What it\nprints for the fake workspace") == printed
    monkeypatch.setenv(
        CONN_VARIABLE,
        fake_azure.connection_value(engine="azureml_v2", datastore="identitystore", compute_target="cpu-cluster"),
    )
    assert preflight([]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL ")]
    assert _readme_block("for a cluster without a managed identity") == failed
