"""Dockerfile and docker-compose.yaml, checked without a Docker engine: docker-compose's own parser
(Debian's docker-compose ``config``), the files the Dockerfile copies, and the image's requirements
against uv.lock."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yaml"
REQUIREMENTS = REPO / "requirements" / "airflow-image.txt"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}


def docker_compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is missing: install Debian's docker-compose package (scripts/setup.sh --compose)")
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_UID": "1234"}
    return subprocess.run([binary, "-f", str(COMPOSE), *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, variables interpolated)."""
    result = docker_compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_accepts_the_file() -> None:
    result = docker_compose("config", "-q")
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_stack_has_postgres_an_init_job_and_the_four_airflow_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "airflow-init", *AIRFLOW_SERVICES}
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["command"] in ([command], command)
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["user"] == "1234:0"
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    [port] = services["airflow-apiserver"]["ports"]
    assert str(port).startswith("127.0.0.1:8080:8080"), "the UI should only be reachable from this machine"


def test_the_code_and_the_datastore_are_mounted_where_the_connection_points(compose: dict[str, Any]) -> None:
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = compose["services"][name]
        binds = [volume.split(":") for volume in service["volumes"]]  # docker-compose 1.x: source:target:mode
        mounts = {Path(source).relative_to(REPO).as_posix(): target for source, target, _mode in binds}
        assert mounts["dags"] == "/opt/airflow/dags"
        assert mounts["plugins"] == "/opt/airflow/plugins"
        assert mounts["include"] == "/opt/airflow/include"
        connection = json.loads(service["environment"]["AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT"])
        assert connection["extra"]["engine"] == "local"
        assert mounts["data/datastore"] == connection["extra"]["datastore_root"]


def test_the_init_job_migrates_and_writes_todays_samples_in_valid_bash(compose: dict[str, Any]) -> None:
    init = compose["services"]["airflow-init"]
    assert init["entrypoint"] in (["/bin/bash"], "/bin/bash") and init["command"][0] == "-c"
    # config prints $$ as written (its output stays a valid compose file); at run time compose makes it $
    script = init["command"][1].replace("$$", "$")
    assert "airflow db migrate" in script and "python -m azureml_parallel_r.examples.samples" in script
    assert "inputs=/opt/airflow/datastore/r-script-inputs/$(date -u +%F)" in script
    syntax = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_the_dockerfile_builds_on_the_airflow_version_the_project_locks() -> None:
    text = DOCKERFILE.read_text()
    [image] = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    locked = re.search(r"^apache-airflow==(\S+)$", REQUIREMENTS.read_text(), flags=re.MULTILINE)
    assert locked, "requirements/airflow-image.txt does not pin apache-airflow"
    assert image == f"apache/airflow:{locked.group(1)}-python{sys.version_info.major}.{sys.version_info.minor}"


def test_the_dockerfile_installs_the_r_packages_setup_installs() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    r_packages = re.search(r"^R_PACKAGES=\(([^)]*)\)", setup, flags=re.MULTILINE)
    assert r_packages
    apt_line = re.search(r"apt-get install[^\n]*\\\n\s+([^\n]+)\\", DOCKERFILE.read_text())
    assert apt_line and set(apt_line.group(1).split()) == set(r_packages.group(1).split())


def test_every_file_the_dockerfile_copies_exists() -> None:
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY"):
            arguments = [a for a in line.split()[1:] if not a.startswith("--")]
            sources.extend(arguments[:-1])
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"


def test_the_image_requirements_are_the_locked_runtime_dependencies(tmp_path: Path) -> None:
    exported = tmp_path / "requirements.txt"
    command = REQUIREMENTS.read_text().splitlines()[1].lstrip("# ").split()
    assert command[:2] == ["uv", "export"], command
    output_at = command.index("-o")
    command[output_at + 1] = str(exported)
    subprocess.run([str(Path(sys.executable).parent / "uv"), *command[1:], "--quiet"], cwd=REPO, check=True)
    assert exported.read_text().splitlines()[2:] == REQUIREMENTS.read_text().splitlines()[2:], (
        "requirements/airflow-image.txt is stale: run "
        "uv export --frozen --no-dev --no-hashes --no-emit-project --format requirements-txt "
        "-o requirements/airflow-image.txt"
    )
    assert not re.search(r"^(pytest|ruff|selenium)==", exported.read_text(), flags=re.MULTILINE)
