"""Pipeline run statuses shared by every engine (the Azure ML ``PipelineRun`` status strings), and how the
statuses of Azure ML's two SDKs map onto them."""

from __future__ import annotations

NOT_STARTED = "NotStarted"
RUNNING = "Running"
FINISHED = "Finished"
FAILED = "Failed"
CANCELED = "Canceled"

ALL = frozenset({NOT_STARTED, RUNNING, FINISHED, FAILED, CANCELED})
TERMINAL = frozenset({FINISHED, FAILED, CANCELED})
UNSUCCESSFUL = frozenset({FAILED, CANCELED})

# PipelineRun (and step run) statuses of SDK v1, and the v2 job statuses (azure-ai-ml's JobStatus) -> the five
# above. azure-ai-ml ends its own wait on Completed, Failed, Canceled, NotResponding and Paused
# (RunHistoryConstants.TERMINAL_STATUSES, azure/ai/ml/operations/_run_history_constants.py): a paused job does not
# go on by itself, so it is an unsuccessful end here too; CancelRequested is still running (the job has not
# stopped yet) and Unknown is read as running.
AZURE_STATUSES = {
    "NotStarted": NOT_STARTED,
    "Queued": NOT_STARTED,
    "Preparing": NOT_STARTED,
    "Provisioning": NOT_STARTED,
    "Starting": NOT_STARTED,
    "Running": RUNNING,
    "Finalizing": RUNNING,
    "CancelRequested": RUNNING,
    "Finished": FINISHED,
    "Completed": FINISHED,
    "Failed": FAILED,
    "NotResponding": FAILED,
    "Canceled": CANCELED,
    "Cancelled": CANCELED,
    "Paused": FAILED,
    "Unknown": RUNNING,
}


def from_azure(azure_status: str) -> str:
    """One of :data:`ALL` for an Azure ML status (a v1 run's or a v2 job's); one this map does not know is
    Running, so a wait goes on rather than ending on a status nobody has seen."""
    return AZURE_STATUSES.get(azure_status, RUNNING)
