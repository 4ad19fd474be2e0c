"""The real Airflow services on this machine, without Docker: a private PostgreSQL cluster (Debian's
packages), ``airflow db migrate``, then the api-server, scheduler, dag-processor and triggerer, all on
loopback ports picked at start. Every process runs in its own process group and is stopped (SIGTERM,
then SIGKILL) when the stack leaves its ``with`` block, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.waiting import wait_until

T = TypeVar("T")
VENV_BIN = Path(sys.executable).parent
# The scheduler's and triggerer's log servers bind every interface and cannot be told otherwise: skipped,
# the api-server reads the task and trigger logs from the shared local log folder instead.
AIRFLOW_SERVICES = (
    ("api-server",),
    ("scheduler", "--skip-serve-logs"),
    ("dag-processor",),
    ("triggerer", "--skip-serve-logs"),
)


class StackError(RuntimeError):
    """A service did not start, died, or a wait ran out; the message carries the relevant log tail."""


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_binary(name: str) -> str:
    """Return the newest Debian PostgreSQL server binary ``name`` (initdb, postgres, ...)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    raise StackError(
        f"PostgreSQL's {name} was not found under /usr/lib/postgresql/*/bin: install Debian's postgresql package "
        "(scripts/setup.sh --system does)"
    )


class Service:
    """One long-running process in its own process group, its output in ``log``."""

    def __init__(
        self, name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None, user: str | None = None
    ):
        self.name, self.log = name, log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                user=user,
                start_new_session=True,
            )

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise StackError(
                f"{self.name} exited with code {self.process.returncode}; last lines of {self.log}:\n{self.tail()}"
            )

    def stop(self, grace: float = 20.0, first_signal: signal.Signals = signal.SIGTERM) -> None:
        """Send ``first_signal`` to the whole process group, SIGKILL what is left after ``grace`` seconds."""
        for sig, wait in ((first_signal, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; children of the group (task runners, uvicorn workers) may still be alive
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            return


class PostgresServer:
    """A throw-away PostgreSQL cluster listening on 127.0.0.1 only, with an ``airflow`` database.

    :param root: an empty folder for the cluster (made traversable for the ``postgres`` user when run as root).
    """

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.data, self.socket_dir = root / "data", root / "socket"
        # initdb and postgres refuse to run as root: run them as Debian's postgres user then
        self.user = "postgres" if os.geteuid() == 0 else None
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            account = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        log = self.root.parent / "logs" / "postgres.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        initdb = subprocess.run(
            [
                postgres_binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                "airflow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self.user,
            check=False,
        )
        if initdb.returncode:
            raise StackError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        self.service = Service(
            "postgres",
            [
                postgres_binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=200",
            ],
            log,
            user=self.user,
        )
        wait_until(self._create_database, timeout=60, what="PostgreSQL to accept connections")

    def _create_database(self) -> bool:
        import psycopg2

        assert self.service is not None
        self.service.check_alive()
        try:
            connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        except psycopg2.OperationalError:
            return False
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE airflow")
        finally:
            connection.close()
        return True

    def stop(self) -> None:
        if self.service:
            self.service.stop(first_signal=signal.SIGINT)  # PostgreSQL's fast shutdown: do not wait for clients


class AirflowApi:
    """The REST API (``/api/v2``) with a token of the auth manager's (``POST /auth/token``).

    :param base_url: the api-server's root URL.
    :param username: a user.
    :param password: its password.
    """

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        token = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.is_error:
            raise StackError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, json=body)


# The FAB auth manager's users of the stack: role and, for a per-DAG role, the one DAG it may read and trigger.
# The per-DAG role is Viewer's permissions without "can_read on DAGs" (every DAG), plus the DAG's own ones. As
# docs/run-report.md says, the roles that should see the report's tab get "can read on Plugins" (FAB gives it to
# Admin and Op only: apache/airflow#39254); the Viewer role here has it.
PER_DAG_ROLE_SCRIPT = """
import sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

role_name, dag_id = sys.argv[1], sys.argv[2]
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    sm.add_permission_to_role(sm.find_role("Viewer"), sm.create_permission("can_read", "Plugins"))
    role = sm.find_role(role_name) or sm.add_role(role_name)
    for permission in sm.find_role("Viewer").permissions:
        if (permission.action.name, permission.resource.name) != ("can_read", "DAGs"):
            sm.add_permission_to_role(role, permission)
    for action, resource in (
        ("can_read", f"DAG:{dag_id}"),
        ("can_edit", f"DAG:{dag_id}"),
        ("can_read", f"DAG Run:{dag_id}"),
        ("can_create", f"DAG Run:{dag_id}"),
    ):
        sm.add_permission_to_role(role, sm.create_permission(action, resource))
"""


class AirflowStack:
    """PostgreSQL plus the four Airflow services over the project's dags/ and plugins/, with the FAB auth manager
    (apache-airflow-providers-fab) and three users: an admin, a viewer (reads every DAG, triggers none) and a user
    whose role allows one DAG only (``per_dag_dag_id``: read and trigger it, nothing else). ``[api] base_url`` is not
    set, as the shipped stacks (scripts/standalone.sh, docker-compose.yaml) set none.

    :param root: an empty folder for the database, AIRFLOW_HOME, the logs and the local datastore.
    :param repo: the project checkout.
    :param extra_env: more environment for every Airflow process (connections, DAG settings).
    """

    username = "admin"
    viewer = "viewer"  # FAB's Viewer role: may read every DAG and run, and trigger none
    per_dag_user = "team"  # a per-DAG role: r_parallel_batch only
    per_dag_dag_id = "r_parallel_batch"

    def __init__(self, root: Path, repo: Path, extra_env: dict[str, str] | None = None):
        self.root, self.repo = root, repo
        self.logs = root / "logs"
        self.home = root / "airflow-home"
        self.postgres = PostgresServer(root / "postgres")
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.password = secrets.token_urlsafe(16)
        self.viewer_password = secrets.token_urlsafe(16)
        self.per_dag_password = secrets.token_urlsafe(16)
        self.services: list[Service] = []
        self.env = self._environment(extra_env or {})
        self._api: AirflowApi | None = None

    def _environment(self, extra_env: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.repo / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # HS512: 64 bytes or more
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # parse the DAG folder soon after start, and pick up queued work quickly
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
                **extra_env,
            }
        )
        return env

    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.cli("db", "migrate", timeout=300)
        self._add_users()
        for name, *options in AIRFLOW_SERVICES:
            argv = [str(VENV_BIN / "airflow"), name, *options]
            self.services.append(Service(name, argv, self.logs / f"{name}.log", env=self.env))
        wait_until(self._api_ready, timeout=120, what=f"the api-server at {self.base_url}")

    def _add_users(self) -> None:
        """The admin, the viewer and the per-DAG user, through FAB's own CLI and security manager."""
        role = f"{self.per_dag_dag_id} team"
        made = subprocess.run(
            [sys.executable, "-c", PER_DAG_ROLE_SCRIPT, role, self.per_dag_dag_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if made.returncode:
            raise StackError(f"the per-DAG role could not be made:\n{made.stdout}{made.stderr}")
        for user, password, user_role in (
            (self.username, self.password, "Admin"),
            (self.viewer, self.viewer_password, "Viewer"),
            (self.per_dag_user, self.per_dag_password, role),
        ):
            names = ["--firstname", user, "--lastname", "User", "--email", f"{user}@example.com"]
            # --password=VALUE: a random password may start with "-", which argparse would take for an option
            self.cli("users", "create", "--username", user, f"--password={password}", "--role", user_role, *names)

    def _api_ready(self) -> bool:
        self.check_alive()
        try:
            return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def check_alive(self) -> None:
        """Raise StackError with its log tail if any service has exited."""
        for service in [self.postgres.service, *self.services]:
            if service is not None:
                service.check_alive()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        self.postgres.stop()

    @property
    def api(self) -> AirflowApi:
        if self._api is None:
            self._api = AirflowApi(self.base_url, self.username, self.password)
        return self._api

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this stack; raise StackError with its output if it fails."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            shown = " ".join("--password=***" if arg.startswith("--password=") else arg for arg in args)
            raise StackError(f"airflow {shown} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def listening_sockets(self) -> list[tuple[str, int]]:
        """(address, port) of every TCP socket any process of the stack listens on."""
        groups = {s.process.pid for s in [self.postgres.service, *self.services] if s}
        inodes: set[str] = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, IndexError):
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                    process_group = int(stat.read().rsplit(")", 1)[1].split()[2])
                if process_group in groups:
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        with contextlib.suppress(OSError):
                            target = os.readlink(f"/proc/{pid}/fd/{fd}")
                            if target.startswith("socket:["):
                                inodes.add(target[8:-1])
        return [address for address, inode in _tcp_listeners() if inode in inodes]

    def logs_tail(self) -> str:
        """The last lines of every service log, for a failing test's message."""
        parts = [f"--- {s.name} ({s.log})\n{s.tail(25)}" for s in [self.postgres.service, *self.services] if s]
        return "\n".join(parts)


def _tcp_listeners() -> Iterator[tuple[tuple[str, int], str]]:
    """((address, port), socket inode) of every listening TCP socket on this machine (/proc/net/tcp*)."""
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] != "0A":  # TCP_LISTEN
                    continue
                hex_address, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_address)
                # the kernel prints each 32-bit word of the address in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                yield (socket.inet_ntop(family, raw), int(hex_port, 16)), fields[9]
