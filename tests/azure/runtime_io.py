"""What the fake's runtimes (v1 step runner, v2 job runner) do with storage: download a folder of blobs as a mount
or a download would give it, upload an output folder as the write mount leaves it, and keep a job's logs as its
run's files (artifacts of origin ``ExperimentRun`` in container ``azureml``: ``ExperimentRun/dcid.<run id>/<name>``,
azureml/core/run.py ``RUN_ORIGIN`` and ``Run._container``; azure-ai-ml's default artifact store of a job is the
same path on ``workspaceartifactstore``, ``JobOperations._get_named_output_uri``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def download_prefix(container: Any, prefix: str, target: Path) -> int:
    """Write every blob below ``prefix/`` into ``target`` (relative paths kept); return how many there were."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    count = 0
    for blob in container.list_blobs(name_starts_with=base):
        path = target / blob.name[len(base) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(container.get_blob_client(blob.name).download_blob().readall())
        count += 1
    target.mkdir(parents=True, exist_ok=True)
    return count


def upload_folder(container: Any, folder: Path, destination: str) -> None:
    """Upload every file below ``folder`` under ``destination``."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        container.upload_blob(f"{destination.rstrip('/')}/{relative}", path.read_bytes(), overwrite=True)


def upload_run_logs(workspace: Any, logs: Path, run_id: str) -> None:
    """The runtime's ``logs/`` folder as the run's files ``logs/...``."""
    for path in sorted(p for p in logs.rglob("*") if p.is_file()):
        workspace.upload_run_file(run_id, f"logs/{path.relative_to(logs).as_posix()}", path.read_bytes())
