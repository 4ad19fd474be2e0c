"""The run statuses every engine reports, and how each Azure ML SDK's statuses map onto them, by its own source."""

from __future__ import annotations

import pytest

from azureml_parallel_r import status as run_status


@pytest.mark.parametrize(
    ("sdk", "azure", "ours"),
    [
        ("v1", "Queued", "NotStarted"),
        ("v1", "Finalizing", "Running"),
        ("v1", "Finished", "Finished"),
        ("v1", "NotResponding", "Running"),
        ("v1", "Paused", "Running"),
        ("v1", "Cancelled", "Canceled"),
        ("v2", "NotResponding", "Failed"),
        ("v2", "Paused", "Failed"),
        ("v2", "Completed", "Finished"),
        ("v1", "SomethingNew", "Running"),
        ("v2", "SomethingNew", "Running"),
    ],
)
def test_status_mapping(sdk: str, azure: str, ours: str) -> None:
    assert run_status.from_azure(azure, sdk) == ours


def test_every_v1_run_status_is_mapped_as_azureml_core_waits_for_it() -> None:
    """azureml-core's Run.wait_for_completion goes on through its running and post-processing statuses: a v1 run
    that is NotResponding or Paused for a while is still waited for, not ended as Failed."""
    from azureml._restclient.constants import RunStatus

    assert set(RunStatus.list()) <= set(run_status.V1_STATUSES)
    waits = set(RunStatus.get_running_statuses()) | set(RunStatus.get_post_processing_statuses())
    assert {status for status in waits if run_status.from_azure(status, "v1") in run_status.TERMINAL} == set()
    ends = set(RunStatus.list()) - waits
    assert {status for status in ends if run_status.from_azure(status, "v1") not in run_status.TERMINAL} == set()


def test_every_v2_job_status_is_mapped_as_azure_ai_ml_ends_its_own_wait() -> None:
    """Each azure-ai-ml JobStatus has an explicit state; the ones its own wait treats as terminal end here too."""
    from azure.ai.ml._restclient.arm_ml_service.models import JobStatus
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    assert {member.value for member in JobStatus} <= set(run_status.V2_STATUSES)
    terminal = {str(getattr(status, "value", status)) for status in RunHistoryConstants.TERMINAL_STATUSES}
    ended = {status for status in run_status.V2_STATUSES if run_status.from_azure(status, "v2") in run_status.TERMINAL}
    assert ended >= terminal
    in_progress = {
        str(getattr(s, "value", s))
        for s in RunHistoryConstants.IN_PROGRESS_STATUSES + RunHistoryConstants.POST_PROCESSING_STATUSES
    }
    assert not in_progress & ended
