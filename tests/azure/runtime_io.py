"""What the fake's runtimes (v1 step runner, v2 job runner) share: the local engine run as the parallel runtime until
it ends or the service cancels it; and storage: download a folder of blobs as a mount or a download would give it,
upload an output folder as the write mount leaves it, and keep a job's logs as its run's files (artifacts of origin
``ExperimentRun`` in container ``azureml``: ``ExperimentRun/dcid.<run id>/<name>``, azureml/core/run.py
``RUN_ORIGIN`` and ``Run._container``; azure-ai-ml's default artifact store of a job is the same path on
``workspaceartifactstore``, ``JobOperations._get_named_output_uri``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from azureml_parallel_r import status as run_status
from azureml_parallel_r.engine.job import JobSpec
from azureml_parallel_r.engine.runs import start_run
from tests.azure.workspace import add_directories


def run_engine(spec: JobSpec, cancel: threading.Event) -> str:
    """Run ``spec`` on the local engine until it ends, canceling it when ``cancel`` is set; return its end status
    (Finished, Failed or Canceled)."""
    run = start_run(spec)
    while not cancel.wait(0.1):  # the engine's own state, polled
        if run.state().status in run_status.TERMINAL:
            break
    if cancel.is_set():
        run.cancel()
    return run.wait(timeout=600)


def download_prefix(container: Any, prefix: str, target: Path) -> int:
    """Write every blob below ``prefix/`` into ``target`` (relative paths kept), as a mount shows them: a directory
    of a hierarchical namespace (a zero-length blob marked ``hdi_isfolder``, :class:`tests.azure.workspace.
    FakeDatastore`) is a folder, not a file. Return how many files there were."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    count = 0
    for blob in container.list_blobs(name_starts_with=base, include=["metadata"]):
        if (blob.metadata or {}).get("hdi_isfolder") == "true":
            (target / blob.name[len(base) :]).mkdir(parents=True, exist_ok=True)
            continue
        path = target / blob.name[len(base) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(container.get_blob_client(blob.name).download_blob().readall())
        count += 1
    target.mkdir(parents=True, exist_ok=True)
    return count


class StepFailed(RuntimeError):
    """The step could not start (its input could not be mounted); the message goes to its error log."""


def mount_folder(container: Any, prefix: str, target: Path, not_found: str) -> Path:
    """What a read-only mount of ``prefix`` shows, downloaded into ``target``: a folder that is missing or holds no
    files fails the step with ``not_found``, as the service's mount does.

    :param container: the storage container holding the folder.
    :param prefix: the folder in it.
    :param target: the local folder that plays the mount.
    :param not_found: the error run history records when there is nothing to mount.
    """
    if download_prefix(container, prefix, target) == 0:
        raise StepFailed(not_found)
    return target


def upload_folder(container: Any, folder: Path, destination: str) -> None:
    """Upload every file below ``folder`` under ``destination`` (with the directories a hierarchical namespace
    makes, :func:`tests.azure.workspace.add_directories`)."""
    names = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        names.append(f"{destination.rstrip('/')}/{path.relative_to(folder).as_posix()}")
        container.upload_blob(names[-1], path.read_bytes(), overwrite=True)
    add_directories(container, names)


def upload_run_logs(workspace: Any, logs: Path, run_id: str) -> None:
    """The runtime's ``logs/`` folder as the run's files ``logs/...``."""
    for path in sorted(p for p in logs.rglob("*") if p.is_file()):
        workspace.upload_run_file(run_id, f"logs/{path.relative_to(logs).as_posix()}", path.read_bytes())
