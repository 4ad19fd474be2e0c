"""One worker process of a local run, as the controller sees it: spawned with the entry-script host
(:mod:`azureml_parallel_r.engine.entry_host`) in it, driven over two pipes by its slot thread, killed as a process
group. A worker process is what Azure ML calls one of the ``node_count x process_count_per_node`` processes that
run the entry script."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azureml_parallel_r.engine.job import PACKAGE_PARENT, JobSpec
from azureml_parallel_r.engine.tables import MiniBatch
from azureml_parallel_r.run_settings import INPUT_NAME

DATASET_VARIABLES = "AZUREML_DATASET_ENVIRONMENT_VARS"
INIT_TIMEOUT_SECONDS = 600.0
STOP_GRACE_SECONDS = 10.0


def _child_setup() -> Callable[[], None]:
    """Pre-exec hook: own process group (killable as one) and death with the controller (Linux)."""
    libc = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded (find_library forks ldconfig)

    def setup() -> None:
        os.setpgid(0, 0)
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return setup


@dataclass
class Attempt:
    """The outcome of one ``run()`` call.

    :param kind: ``ok``, ``error`` (run raised), ``timeout`` or ``crash`` (the process died).
    :param rows: the append_row lines ``run()`` returned.
    :param error: the traceback or what killed the process.
    """

    kind: str
    rows: list[str] = field(default_factory=list)
    error: str | None = None


class InitFailed(RuntimeError):
    """A worker process could not import the entry script or its ``init()`` raised (the runtime retries)."""


class EntryScriptRefused(RuntimeError):
    """The entry script needs what the local engine does not model, or has no ``run()``: no retry can help."""


class WorkerProcess:
    """One worker process, driven over two pipes by its slot thread in the controller.

    :param spec: the job.
    :param node: the node's id, its log folders' name (``0``).
    :param process: the process's name (``process000``), unique on its node.
    :param env: environment for the process.
    """

    def __init__(self, spec: JobSpec, node: str, process: str, env: dict[str, str]) -> None:
        self.spec = spec
        self.name = f"{node}/{process}"
        self.node = node
        self.process = process
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_fd = -1
        self._read_fd = -1
        self._buffer = b""

    def start(self, argv: list[str], *, csv_options: dict[str, Any] | None = None, partitioned: bool = False) -> None:
        """Spawn the process and wait for ``init()``; raise :class:`InitFailed` with its traceback, or
        :class:`EntryScriptRefused` when the entry script cannot run here at all.

        :param argv: the driver's arguments (the entry script's ``sys.argv``).
        :param csv_options: how a returned DataFrame becomes rows (:mod:`.append_row_settings`).
        :param partitioned: the job has partition keys: ``run()`` gets the ``mini_batch_context`` too.
        """
        logs = self.spec.logs_dir
        stdout_path = os.path.join(logs, "user", "stdout", self.node, f"{self.process}.stdout.txt")
        stderr_path = os.path.join(logs, "user", "stderr", self.node, f"{self.process}.stderr.txt")
        for path in (stdout_path, stderr_path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            # -P: the working folder (the source directory, which may hold the compute package it ships) is not put
            # first on sys.path, so the engine's own package is the one imported; the entry script then sees the
            # source directory on sys.path as the runtime gives it (entry_host)
            self._proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "azureml_parallel_r.engine.entry_host", str(request_r), str(response_w)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(request_r, response_w),
                env=self.env,
                cwd=self.spec.source_dir,
                preexec_fn=_child_setup(),
            )
        os.close(request_r)
        os.close(response_w)
        self._write_fd, self._read_fd = request_w, response_r
        setup = {
            "entry_script": self.spec.entry_script_path,
            "source_dir": self.spec.source_dir,
            "argv": argv,
            "csv_options": csv_options or {},
            "partitioned": partitioned,
        }
        reply = self._call(setup, INIT_TIMEOUT_SECONDS)
        if reply is None or not reply.get("ready"):
            error = reply.get("error") if reply else self._death_message(stderr_path)
            self.kill()
            if reply is not None and reply.get("refused"):
                raise EntryScriptRefused(f"the entry script cannot run on the local engine: {error}")
            raise InitFailed(f"init() failed in {self.name}:\n{error}")

    def run_batch(self, batch: MiniBatch, timeout: float) -> Attempt:
        """Send one mini-batch to ``run()`` and wait at most ``timeout`` seconds for its rows.

        :param batch: its files, or its table's DataFrame file, and its partition's key values.
        :param timeout: ``run_invocation_timeout``.
        """
        message: dict[str, Any] = {"cmd": "run", "files": batch.items, "table": batch.table, "keys": batch.keys}
        reply = self._call(message, timeout)
        if reply is None:
            if self._timed_out:
                return Attempt("timeout", error=f"run() exceeded run_invocation_timeout={timeout:g}s; process killed")
            return Attempt("crash", error=f"{self.name} died during run() (exit status {self._proc_returncode()})")
        if reply.get("ok"):
            return Attempt("ok", rows=list(reply.get("rows", [])))
        return Attempt("error", error=reply.get("error"))

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Ask for ``shutdown()`` and exit; kill the process group after ``grace`` seconds."""
        if self._write_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b'{"cmd": "shutdown"}\n')
        if self._proc is not None:
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_fds()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the worker's process group (thread-safe)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
        self._close_fds()

    _timed_out = False

    def _call(self, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        self._timed_out = False
        try:
            os.write(self._write_fd, (json.dumps(message) + "\n").encode())
        except OSError:
            return None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._timed_out = True
                self.kill()
                return None
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if ready:
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _proc_returncode(self) -> int | None:
        return self._proc.wait() if self._proc is not None else None

    def _death_message(self, stderr_path: str) -> str:
        code = self._proc_returncode()
        try:
            with open(stderr_path, encoding="utf-8", errors="replace") as handle:
                tail = handle.read()[-4000:]
        except OSError:
            tail = ""
        return f"the worker process exited with status {code} before init() finished\n{tail}"

    def _close_fds(self) -> None:
        for fd in (self._write_fd, self._read_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._write_fd = self._read_fd = -1


def worker_environment(spec: JobSpec, node: str, process: str, workdir: str) -> dict[str, str]:
    """The environment of one worker process: the input exposed as Azure ML exposes a mounted FileDataset input
    (azureml/core/run.py, ``InputDatasets._load_input_datasets``), the job's own variables, the output folder
    (``AZUREML_BI_OUTPUT_PATH``), and a temporary folder per node.

    An Azure ML job runs in a container of its own: a node's temporary folder lives as long as the job. Here each
    node of a run gets one too (shared by its processes, removed with the run), so what the entry script and R keep
    there (scratch folders, the journal of finished files) never outlives it.

    :param spec: the job.
    :param node: the node's id (``0``).
    :param process: the process's name (``process000``).
    :param workdir: the run's temporary folder.
    """
    env = dict(os.environ)
    env.update({DATASET_VARIABLES: f"{INPUT_NAME}:mount", INPUT_NAME: spec.input_dir})
    env.update(spec.settings.environment_variables)  # the job's own variables may name the input differently
    python_path = env.get("PYTHONPATH")
    node_tmp = os.path.join(workdir, node, "tmp")
    os.makedirs(node_tmp, exist_ok=True)
    env.update(
        {
            "TMPDIR": node_tmp,
            "PYTHONPATH": PACKAGE_PARENT + (os.pathsep + python_path if python_path else ""),
            "PYTHONUNBUFFERED": "1",
            "AZUREML_BI_OUTPUT_PATH": spec.output_dir,
            "AZUREML_PARALLEL_R_AGENT_NAME": process,
            "AZUREML_PARALLEL_R_LOG_DIR": os.path.join(spec.logs_dir, "user", "entry_script_log", node),
            "AZUREML_PARALLEL_R_WORKING_DIR": os.path.join(workdir, node, process),
            "AZUREML_RUN_ID": spec.run_id,
        }
    )
    return env


def driver_arguments(spec: JobSpec, code: JobSpec) -> list[str]:
    """The arguments the runtime passes to its driver, the entry script first (which reads them with
    ``parse_known_args``), then the entry script's own.

    :param spec: the job.
    :param code: the job with its source directory as the run's copy (where the entry script is imported from).
    """
    s = spec.settings
    runtime_args = {
        "--scoring_module_name": spec.entry_script,
        "--mini_batch_size": s.mini_batch_size,
        "--error_threshold": s.error_threshold,
        "--output": spec.output_dir,
        "--output_action": s.output_action,
        "--append_row_file_name": s.append_row_file_name,
        "--run_invocation_timeout": s.invocation_timeout,
        "--run_max_try": s.run_max_try,
        "--process_count_per_node": s.processes_per_node,
        "--node_count": s.node_count,
        "--logging_level": s.logging_level,
    }
    if spec.partition_keys:  # the runtime adds it (azureml-examples 1a_oj_sales_prediction parses it unasked)
        runtime_args["--partition_keys"] = ",".join(spec.partition_keys)
    argv = [code.entry_script_path]
    for name, value in runtime_args.items():
        argv += [name, str(value)]
    return argv + list(spec.entry_args)


def end_run_processes(run_id: str) -> int:
    """Kill every process left of the run: those that carry its ``AZUREML_RUN_ID`` in their environment (the workers,
    their R sessions and whatever those started), this one excepted. A worker that was killed (its grace period
    over) had no chance to end what its R started, and a child that left R's process group survives R; an Azure ML
    job's container ends them all when the job ends, and this is its stand-in. Returns how many were killed.

    :param run_id: the run's id.
    """
    needle = f"AZUREML_RUN_ID={run_id}\0".encode()
    killed = 0
    for _round in range(5):  # what forks while it is being killed is found the next time round
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as handle:
                    if needle in handle.read() + b"\0":
                        found.append(int(entry))
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        if not found:
            break
    return killed
