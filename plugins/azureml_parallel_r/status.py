"""Pipeline run statuses shared by every engine (the Azure ML ``PipelineRun`` status strings), and how the
statuses of Azure ML's two SDKs map onto them."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status, whatever its engine (equal to, and written as, Azure ML's own word)."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELED = "Canceled"


NOT_STARTED = RunStatus.NOT_STARTED
RUNNING = RunStatus.RUNNING
FINISHED = RunStatus.FINISHED
FAILED = RunStatus.FAILED
CANCELED = RunStatus.CANCELED

ALL = frozenset(RunStatus)
TERMINAL = frozenset({FINISHED, FAILED, CANCELED})
UNSUCCESSFUL = frozenset({FAILED, CANCELED})

SDK_V1 = "v1"
SDK_V2 = "v2"

# Both SDKs' status words end the same way when a run is done ...
_DONE = {"Finished": FINISHED, "Completed": FINISHED, "Failed": FAILED, "Canceled": CANCELED, "Cancelled": CANCELED}
_NOT_STARTED = {name: NOT_STARTED for name in ("NotStarted", "Queued", "Preparing", "Provisioning", "Starting")}
# ... but not on the statuses in between, so each SDK's are mapped by its own source.
#
# SDK v1 (azureml-core, azureml/_restclient/constants.py, RunStatus): get_running_statuses() counts NotResponding,
# Pausing, Paused and Unapproved as running and get_post_processing_statuses() CancelRequested and Finalizing, so
# Run.wait_for_completion goes on waiting through them: a v1 run that does not respond for a while may recover.
V1_STATUSES = {
    **_NOT_STARTED,
    **{
        name: RUNNING
        for name in ("Running", "Unapproved", "NotResponding", "Pausing", "Paused", "CancelRequested", "Finalizing")
    },
    **_DONE,
}
# SDK v2 (azure-ai-ml, azure/ai/ml/operations/_run_history_constants.py, RunHistoryConstants): its own wait ends
# on TERMINAL_STATUSES, which include NotResponding and Paused (a paused job does not go on by itself), so those
# are an unsuccessful end; CancelRequested and Finalizing are POST_PROCESSING_STATUSES (still running), and
# Unknown (a JobStatus member) is read as running.
V2_STATUSES = {
    **_NOT_STARTED,
    **{name: RUNNING for name in ("Running", "CancelRequested", "Finalizing", "Unknown")},
    **{name: FAILED for name in ("NotResponding", "Paused")},
    **_DONE,
}
SDK_STATUSES = {SDK_V1: V1_STATUSES, SDK_V2: V2_STATUSES}


def from_azure(azure_status: str, sdk: str) -> str:
    """One of :data:`ALL` for an Azure ML status, read the way the SDK that reported it reads it (a v1 run's or a
    v2 job's); one the SDK's map does not know is Running, so a wait goes on rather than ending on a status nobody
    has seen.

    :param azure_status: the status the service reported.
    :param sdk: :data:`SDK_V1` or :data:`SDK_V2`.
    """
    return SDK_STATUSES[sdk].get(azure_status, RUNNING)
