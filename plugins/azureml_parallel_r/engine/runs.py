"""Start a local job detached from the caller, read its status while it runs, and cancel it.

A run is its logs folder: ``job_spec.json`` (what to run), ``status.json`` (written by the controller) and
Azure's log layout. The controller runs in its own session (``python -m azureml_parallel_r.engine
run-spec``), so the caller, an Airflow task for instance, may exit while the job goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.engine.job import SPEC_FILE, STATUS_FILE, JobSpec, read_json, write_json
from azureml_parallel_r.engine.runtime import PACKAGE_PARENT

CANCEL_GRACE_SECONDS = 20.0
PID_FILE = "controller.pid"


class RunNotFound(LookupError):
    """No local run lives in the given logs folder."""


def pid_alive(pid: int) -> bool:
    """Return True while process ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class LocalRun:
    """A handle on one local run.

    :param run_id: the run's id.
    :param logs_dir: the run's logs folder (holds ``status.json``).
    """

    run_id: str
    logs_dir: str

    @classmethod
    def open(cls, logs_dir: str) -> LocalRun:
        """Return the run whose logs folder is ``logs_dir``; raise :class:`RunNotFound` otherwise."""
        spec = read_json(os.path.join(logs_dir, SPEC_FILE))
        if spec is None:
            raise RunNotFound(f"no local run in {logs_dir} (no {SPEC_FILE})")
        return cls(spec["run_id"], logs_dir)

    def state(self) -> dict[str, Any]:
        """Return the run's status record; a run whose controller died unexpectedly reads as Failed."""
        state = read_json(os.path.join(self.logs_dir, STATUS_FILE)) or {
            "run_id": self.run_id,
            "status": run_status.NOT_STARTED,
            "message": "not started",
        }
        state.setdefault("pid", None)
        state["pid"] = state["pid"] or self._controller_pid()
        if state["status"] not in run_status.TERMINAL and state["pid"] and not pid_alive(state["pid"]):
            state = read_json(os.path.join(self.logs_dir, STATUS_FILE)) or state  # it may have just finished
            if state["status"] not in run_status.TERMINAL:
                state = {
                    **state,
                    "status": run_status.FAILED,
                    "message": "the local engine process died unexpectedly",
                }
        return state

    def _controller_pid(self) -> int | None:
        try:
            with open(os.path.join(self.logs_dir, PID_FILE), encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    @property
    def status(self) -> str:
        return self.state()["status"]

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Wait until the run ends (or ``timeout`` seconds pass) and return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (current := self.status) not in run_status.TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(poll)
        return current

    def cancel(self, grace: float = CANCEL_GRACE_SECONDS) -> str:
        """Cancel the run: terminate the controller and its workers; return the final status.

        The controller stops its workers (each runs its entry script's ``shutdown()``) and records
        Canceled; after ``grace`` seconds the whole process group is killed and Canceled recorded here.
        """
        state = self.state()
        if state["status"] in run_status.TERMINAL:
            return state["status"]
        pid = state.get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        if self.wait(timeout=grace) in run_status.TERMINAL and self.status == run_status.CANCELED:
            return run_status.CANCELED
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        state = self.state()
        if state["status"] not in run_status.TERMINAL or state["status"] == run_status.FAILED:
            write_json(
                os.path.join(self.logs_dir, STATUS_FILE),
                {**state, "status": run_status.CANCELED, "message": "canceled", "ended_at": time.time()},
            )
        return run_status.CANCELED


def start_run(spec: JobSpec) -> LocalRun:
    """Start ``spec`` in a detached controller process and return at once.

    :param spec: the job; its logs folder must not hold another run.
    """
    spec.check()  # also refuses a logs or output folder that already holds a run
    spec_path = spec.save()
    write_json(
        os.path.join(spec.logs_dir, STATUS_FILE),
        {"run_id": spec.run_id, "status": run_status.NOT_STARTED, "message": "starting", "pid": None},
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    controller_log = os.path.join(spec.logs_dir, "sys", "controller.txt")
    os.makedirs(os.path.dirname(controller_log), exist_ok=True)
    with open(controller_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azureml_parallel_r.engine", "run-spec", spec_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-{spec.run_id}", daemon=True).start()  # no zombie left behind
    with open(os.path.join(spec.logs_dir, PID_FILE), "w", encoding="ascii") as handle:
        handle.write(str(proc.pid))
    return LocalRun(spec.run_id, spec.logs_dir)
