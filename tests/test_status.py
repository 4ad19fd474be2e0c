"""The run statuses every engine reports, and how both Azure ML SDKs' statuses map onto them."""

from __future__ import annotations

import pytest

from azureml_parallel_r import status as run_status


@pytest.mark.parametrize(
    ("azure", "ours"),
    [("Queued", "NotStarted"), ("Finalizing", "Running"), ("Finished", "Finished"), ("NotResponding", "Failed"),
     ("Cancelled", "Canceled"), ("SomethingNew", "Running")],
)  # fmt: skip
def test_status_mapping(azure: str, ours: str) -> None:
    assert run_status.from_azure(azure) == ours


def test_every_v2_job_status_is_mapped_as_azure_ai_ml_ends_its_own_wait() -> None:
    """Each azure-ai-ml JobStatus has an explicit state; the ones its own wait treats as terminal end here too."""
    from azure.ai.ml._restclient.arm_ml_service.models import JobStatus
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    assert {member.value for member in JobStatus} <= set(run_status.AZURE_STATUSES)
    terminal = {str(getattr(status, "value", status)) for status in RunHistoryConstants.TERMINAL_STATUSES}
    assert {
        status for status in run_status.AZURE_STATUSES if run_status.from_azure(status) in run_status.TERMINAL
    } >= terminal
    assert (
        run_status.from_azure("Completed") == run_status.FINISHED
        and run_status.from_azure("Paused") == run_status.FAILED
    )
