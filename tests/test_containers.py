"""Dockerfile and docker-compose.yaml, checked without a Docker engine: docker-compose's own parser
(Debian's docker-compose ``config``), the files the Dockerfile copies and its build context keeps, its wheel stage's
command run on a copy of what that stage copies, and the image's requirements against uv.lock."""

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


def test_the_package_is_installed_not_mounted_and_the_connection_is_typed(compose: dict[str, Any]) -> None:
    """The stack runs the package as a team installs it: no plugins or include folder over it, and the connection of
    its own type (its form in the UI); only the DAGs and the data are mounted."""
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = compose["services"][name]
        binds = [volume.split(":") for volume in service["volumes"]]  # docker-compose 1.x: source:target:mode
        mounts = {Path(source).relative_to(REPO).as_posix(): target for source, target, _mode in binds}
        assert set(mounts) == {"dags", "data/datastore", "data/logs"}, mounts
        assert mounts["dags"] == "/opt/airflow/dags"
        connection = json.loads(service["environment"]["AIRFLOW_CONN_AZUREML_PARALLEL_R_DEFAULT"])
        assert connection["conn_type"] == "azureml_parallel_r"
        assert connection["extra"]["engine"] == "local"
        assert mounts["data/datastore"] == connection["extra"]["datastore_root"]


def test_one_service_builds_the_image_and_the_others_run_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["airflow-init"]
    image = services["airflow-init"]["image"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == image and services[name]["pull_policy"] == "never"
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_every_airflow_service_has_the_health_check_of_airflows_own_compose_file(compose: dict[str, Any]) -> None:
    """Airflow's docker-compose.yaml (airflow-core/docs/howto/docker-compose): the api-server's version endpoint,
    the scheduler's health check server, and ``airflow jobs check`` for the dag-processor and the triggerer."""
    expected = {
        "airflow-apiserver": ["CMD", "curl", "--fail", "http://localhost:8080/api/v2/version"],
        "airflow-scheduler": ["CMD", "curl", "--fail", "http://localhost:8974/health"],
        "airflow-dag-processor": [
            "CMD-SHELL",
            'airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"',
        ],
        "airflow-triggerer": ["CMD-SHELL", 'airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"'],
    }
    for name, test in expected.items():
        check = compose["services"][name]["healthcheck"]
        assert check["test"] == test, name
        assert check["interval"] == "30s" and check["retries"] == 5 and check["start_period"] == "30s"
    scheduler_env = compose["services"]["airflow-scheduler"]["environment"]
    assert scheduler_env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"  # else nothing listens on 8974


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
    images = {image for image in re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)}
    locked = re.search(r"^apache-airflow==(\S+)$", REQUIREMENTS.read_text(), flags=re.MULTILINE)
    assert locked, "requirements/airflow-image.txt does not pin apache-airflow"
    assert images == {f"apache/airflow:{locked.group(1)}-python{sys.version_info.major}.{sys.version_info.minor}"}


def test_the_dockerfile_installs_the_r_packages_setup_installs() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    r_packages = re.search(r"^R_PACKAGES=\(([^)]*)\)", setup, flags=re.MULTILINE)
    assert r_packages
    apt_line = re.search(r"apt-get install[^\n]*\\\n\s+([^\n]+)\\", DOCKERFILE.read_text())
    assert apt_line and set(apt_line.group(1).split()) == set(r_packages.group(1).split())


def _copies() -> list[tuple[list[str], str]]:
    """The Dockerfile's COPY lines from the build context: (sources, destination); not those from a stage."""
    copies = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            arguments = [a for a in line.split()[1:] if not a.startswith("--")]
            copies.append((arguments[:-1], arguments[-1]))
    return copies


def test_every_file_the_dockerfile_copies_exists_and_the_build_context_keeps_it() -> None:
    """What it copies is in the repository, and ``.dockerignore`` (an allow-list, so .venv and data/ stay out of
    the context) lets it through."""
    sources = [source for sources, _ in _copies() for source in sources]
    assert sources
    allowed = {
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
        assert source.rstrip("/").split("/")[0] in allowed, f".dockerignore leaves {source} out of the build context"


@pytest.mark.slow  # a wheel build, with its build backend from PyPI
def test_the_wheel_stage_builds_the_wheel_the_image_installs(tmp_path: Path) -> None:
    """The first stage's commands, run on a copy of what that stage copies (its WORKDIR a temporary folder): the
    wheel of this version comes out where the second stage copies it from, and the second stage installs it."""
    from azureml_parallel_r import __version__

    text = DOCKERFILE.read_text()
    stage = text[: text.index("\nFROM", text.index("FROM") + 1)]
    (workdir,) = re.findall(r"^WORKDIR\s+(\S+)$", stage, flags=re.MULTILINE)
    for sources, destination in _copies()[: stage.count("\nCOPY")]:
        target = tmp_path / destination
        for source in sources:
            if (REPO / source).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(REPO / source, target, ignore=ignore, dirs_exist_ok=True, symlinks=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / source, target / Path(source).name)
    (command,) = re.findall(r"^RUN (.+)$", stage, flags=re.MULTILINE)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env, check=True, timeout=600)
    wheel = f"azureml_parallel_r-{__version__}-py3-none-any.whl"
    assert (tmp_path / "dist" / wheel).is_file()
    assert f"COPY --from=wheel --chown=airflow:root {workdir}/dist/ /opt/azureml-parallel-r/dist/" in text
    assert "pip install --no-cache-dir --no-deps /opt/azureml-parallel-r/dist/azureml_parallel_r-*.whl" in text
    assert "/opt/airflow/plugins" not in text, "the image runs the installed package, not a plugins folder"


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
