"""The trigger serializes to plain data and fires once when the run ends."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.models import RunState
from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger


def _collect(trigger: ParallelRunTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> mock.Mock:
    fake = mock.create_autospec(ParallelRunBackend, instance=True)

    async def aget_conn(self: AzureMLParallelRunHook) -> ParallelRunBackend:
        return fake

    monkeypatch.setattr(AzureMLParallelRunHook, "aget_conn", aget_conn)
    return fake


def test_serialize_round_trip() -> None:
    trigger = ParallelRunTrigger("run-1", "my_conn", 2.5)
    path, kwargs = trigger.serialize()
    assert path == "azureml_parallel_r.triggers.parallel_run.ParallelRunTrigger"
    assert kwargs == {
        "run_id": "run-1",
        "azureml_parallel_r_conn_id": "my_conn",
        "poll_interval": 2.5,
        "cancel_on_kill": True,
    }
    module, name = path.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)


def test_polls_until_finished(backend: mock.Mock) -> None:
    backend.get_status.side_effect = [RunState("r", "NotStarted"), RunState("r", "Running"), RunState("r", "Finished")]
    events = _collect(ParallelRunTrigger("r", "c", 0))
    assert events == [
        {"status": "success", "message": "Pipeline run r is Finished: ", "run_id": "r", "run_status": "Finished"}
    ]
    assert backend.get_status.call_count == 3


@pytest.mark.parametrize("final", ["Failed", "Canceled"])
def test_failed_or_canceled_runs_fire_an_error(backend: mock.Mock, final: str) -> None:
    backend.get_status.return_value = RunState("r", final, "because")
    backend.describe_failure.return_value = "2 file(s) failed; the first 2: ..."
    (event,) = _collect(ParallelRunTrigger("r", "c", 0))
    assert event["status"] == "error" and event["run_status"] == final and "because" in event["message"]
    # the failure summary travels with the event, read once in the triggerer
    assert event["summary"] == "2 file(s) failed; the first 2: ..."
    backend.describe_failure.assert_called_once_with("r", event["message"])


def test_a_status_error_the_backend_could_not_retry_away_ends_in_an_error_event(backend: mock.Mock) -> None:
    """The backend is the one retry layer: the trigger does not retry on top of it."""
    backend.get_status.side_effect = [RunState("r", "Running"), OSError("gone"), RunState("r", "Finished")]
    (event,) = _collect(ParallelRunTrigger("r", "c", 0))
    assert event["status"] == "error" and "cannot read the status of pipeline run r: OSError: gone" in event["message"]
    assert backend.get_status.call_count == 2


def test_connection_problems_end_in_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOT_THERE", raising=False)
    (event,) = _collect(ParallelRunTrigger("r", "not_there", 0))
    assert event["status"] == "error" and "'not_there' is not defined" in event["message"]


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_a_users_kill_in_the_triggerer_cancels_the_run(backend: mock.Mock, cancel_on_kill: bool) -> None:
    """Airflow 3.3 calls on_kill only for a user's mark-failed, mark-success or clear of the deferred task."""
    backend.cancel.return_value = RunState("r", "Canceled")
    asyncio.run(ParallelRunTrigger("r", "c", 0, cancel_on_kill=cancel_on_kill).on_kill())
    assert backend.cancel.call_args_list == ([mock.call("r")] if cancel_on_kill else [])


def test_a_trigger_leaving_its_triggerer_does_not_cancel(backend: mock.Mock) -> None:
    backend.get_status.return_value = RunState("r", "Running")
    trigger = ParallelRunTrigger("r", "c", 0)

    async def moved() -> None:
        task = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(0.05)
        task.cancel()  # what the triggerer does when the trigger is redistributed or shuts down
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()

    asyncio.run(moved())
    backend.cancel.assert_not_called()


def test_ctrl_c_in_airflow_dags_test_cancels_the_run_it_waits_for(backend: mock.Mock) -> None:
    """dag.test() runs the trigger inline under an in-process supervisor; Ctrl-C there cancels the trigger."""
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms, set_supervisor_comms

    backend.get_status.return_value = RunState("r", "Running")
    backend.cancel.return_value = RunState("r", "Canceled")
    trigger = ParallelRunTrigger("r", "c", 0.01)

    async def interrupted() -> None:
        task = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with set_supervisor_comms(InProcessSupervisorComms(supervisor=mock.Mock())):
        asyncio.run(interrupted())
    backend.cancel.assert_called_once_with("r")
