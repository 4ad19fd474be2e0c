"""Start a local job detached from the caller, read its status while it runs, and cancel it.

A run is its logs folder: ``job_spec.json`` (what to run), ``status.json`` (written by the controller) and
Azure's log layout. The controller runs in its own session (``python -m azureml_parallel_r.engine
run-spec``), so the caller, an Airflow task for instance, may exit while the job goes on.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.compute.records import SPEC_FILE, STATUS_FILE, StatusRecord
from azureml_parallel_r.engine.job import CANCEL_FILE, PACKAGE_PARENT, JobSpec, read_json, write_json

CANCEL_GRACE_SECONDS = 30.0
STALE_AFTER_VARIABLE = "AZUREML_PARALLEL_R_STALE_AFTER_SECONDS"
DEFAULT_STALE_AFTER_SECONDS = 60.0  # the controller writes its heartbeat every 2 s
STATUS_READS = 5


def stale_after_seconds() -> float:
    """How long a run may go without a heartbeat before it reads as Failed (``AZUREML_PARALLEL_R_STALE_AFTER_SECONDS``,
    default 60)."""
    try:
        return float(os.environ.get(STALE_AFTER_VARIABLE, DEFAULT_STALE_AFTER_SECONDS))
    except ValueError:
        return DEFAULT_STALE_AFTER_SECONDS


class RunNotFound(LookupError):
    """No local run lives in the given logs folder."""


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

    def state(self) -> StatusRecord:
        """Return the run's status record. A run that is not finished but whose controller has not refreshed
        its heartbeat for ``STALE_AFTER_SECONDS`` reads as Failed: the controller died or was killed. No
        process id is involved, so any process that sees the run's folder (another container, another
        machine on a shared datastore) reads the same state."""
        recorded = self._read_status()
        state = StatusRecord.from_json(recorded) if recorded else StatusRecord(self.run_id, run_status.NOT_STARTED)
        if state.status not in run_status.TERMINAL:
            heartbeat = state.heartbeat or self._status_mtime()
            silent = time.time() - heartbeat if heartbeat else 0.0
            if silent > stale_after_seconds():
                state = dataclasses.replace(
                    state,
                    status=run_status.FAILED,
                    message=f"the local engine stopped reporting (no heartbeat for {silent:.0f} s, the limit is "
                    f"{stale_after_seconds():.0f} s): its controller died or was killed",
                )
        return state

    def _read_status(self) -> dict[str, Any] | None:
        """``status.json``; read again when it does not parse: the controller rewrites it in place (no new space) when
        it cannot replace it on a full disk, and a read may meet that write half done."""
        path = os.path.join(self.logs_dir, STATUS_FILE)
        for _ in range(STATUS_READS - 1):
            try:
                return read_json(path)
            except ValueError:
                time.sleep(0.05)
        return read_json(path)

    def _status_mtime(self) -> float | None:
        try:
            return os.path.getmtime(os.path.join(self.logs_dir, STATUS_FILE))
        except OSError:
            return None

    @property
    def status(self) -> str:
        return self.state().status

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Wait until the run ends (or ``timeout`` seconds pass) and return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (current := self.status) not in run_status.TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(poll)
        return current

    def cancel(self, grace: float = CANCEL_GRACE_SECONDS) -> str:
        """Cancel the run and return its final status: a cancel request is written into the run's folder and
        the controller, which polls for it, stops its workers (each runs its entry script's ``shutdown()``)
        and records Canceled. A controller that does not answer within ``grace`` seconds (dead, or stuck) is
        recorded Canceled here; its heartbeat stops, so it cannot come back as running.
        """
        state = self.state()
        if state.status in run_status.TERMINAL:
            return state.status
        write_json(os.path.join(self.logs_dir, CANCEL_FILE), {"requested_at": time.time(), "by": os.getpid()})
        if self.wait(timeout=grace) == run_status.CANCELED:
            return run_status.CANCELED
        state = self.state()
        if state.status not in run_status.TERMINAL or state.status == run_status.FAILED:
            canceled = dataclasses.replace(state, status=run_status.CANCELED, message="canceled", ended_at=time.time())
            write_json(os.path.join(self.logs_dir, STATUS_FILE), canceled.to_json())
        return run_status.CANCELED


def start_run(spec: JobSpec) -> LocalRun:
    """Start ``spec`` in a detached controller process and return at once.

    :param spec: the job; its logs folder must not hold another run.
    """
    spec.check()  # also refuses a logs or output folder that already holds a run
    spec_path = spec.save()
    write_json(
        os.path.join(spec.logs_dir, STATUS_FILE),
        StatusRecord(spec.run_id, run_status.NOT_STARTED, "starting", heartbeat=time.time()).to_json(),
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    controller_log = os.path.join(spec.logs_dir, "sys", "controller.txt")
    os.makedirs(os.path.dirname(controller_log), exist_ok=True)
    with open(controller_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "azureml_parallel_r.engine", "run-spec", spec_path],  # -P: see worker_process
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-{spec.run_id}", daemon=True).start()  # no zombie left behind
    return LocalRun(spec.run_id, spec.logs_dir)
