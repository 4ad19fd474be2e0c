"""ParallelRunSensor: poke, deferral with timeout, failure summary, cancel on kill."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from azureml_parallel_r.exceptions import ParallelRunFailedError
from azureml_parallel_r.models import RunState
from azureml_parallel_r.sensors.parallel_run import ParallelRunSensor
from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger


def _sensor(**kwargs) -> ParallelRunSensor:
    return ParallelRunSensor(task_id="wait", run_id="run-9", **kwargs)


@pytest.mark.parametrize(("state", "done"), [("NotStarted", False), ("Running", False), ("Finished", True)])
def test_poke(backend: mock.Mock, context: dict, state: str, done: bool) -> None:
    backend.get_status.return_value = RunState("run-9", state)
    assert _sensor().poke(context) is done


@pytest.mark.parametrize("state", ["Failed", "Canceled"])
def test_failed_or_canceled_raises_with_the_failure_summary(backend: mock.Mock, context: dict, state: str) -> None:
    backend.get_status.return_value = RunState("run-9", state, "why")
    backend.describe_failure.return_value = f"Pipeline run run-9 is {state}: why\n- x.png (r_error): boom"
    with pytest.raises(ParallelRunFailedError, match=r"run-9 is .*\n- x.png \(r_error\): boom"):
        _sensor().poke(context)
    backend.describe_failure.assert_called_once_with("run-9", "why")


def test_deferrable_mode_defers_with_its_timeout(backend: mock.Mock, context: dict) -> None:
    backend.get_status.return_value = RunState("run-9", "Running")
    with pytest.raises(TaskDeferred) as deferred:
        _sensor(deferrable=True, poke_interval=3, timeout=120).execute(context)
    assert isinstance(deferred.value.trigger, ParallelRunTrigger)
    assert deferred.value.trigger.poll_interval == 3
    assert deferred.value.timeout == timedelta(seconds=120)


@pytest.mark.parametrize(("on_kill", "warned"), [(True, False), (False, True)])
def test_deferring_on_an_airflow_that_never_calls_on_kill_says_the_run_will_go_on(
    backend: mock.Mock, context: dict, monkeypatch: pytest.MonkeyPatch, capfd, on_kill: bool, warned: bool
) -> None:
    """Airflow 3.1 and 3.2 never call a trigger's on_kill: the task log says that stopping the task leaves the run."""
    from azureml_parallel_r.sensors import parallel_run as sensor_module

    monkeypatch.setattr(sensor_module, "TRIGGER_ON_KILL", on_kill)
    backend.get_status.return_value = RunState("run-9", "Running")
    with pytest.raises(TaskDeferred):
        _sensor(deferrable=True).execute(context)
    printed = capfd.readouterr()
    assert ("leaves pipeline run run-9 going" in printed.out + printed.err) is warned


def test_deferrable_mode_does_not_defer_for_a_finished_run(backend: mock.Mock, context: dict) -> None:
    backend.get_status.return_value = RunState("run-9", "Finished")
    _sensor(deferrable=True).execute(context)


def test_execute_complete(backend: mock.Mock, context: dict) -> None:
    sensor = _sensor()
    sensor.execute_complete(context, {"status": "success", "message": "done", "run_id": "run-9"})
    backend.describe_failure.return_value = "summary"
    with pytest.raises(ParallelRunFailedError, match="summary"):
        sensor.execute_complete(context, {"status": "error", "message": "Canceled", "run_id": "run-9"})


def test_a_summary_in_the_event_is_the_failure_with_no_second_read(backend: mock.Mock, context: dict) -> None:
    event = {"status": "error", "message": "Failed", "run_id": "run-9", "summary": "the trigger's summary"}
    with pytest.raises(ParallelRunFailedError, match="the trigger's summary"):
        _sensor().execute_complete(context, event)
    backend.describe_failure.assert_not_called()
    backend.fetch_results.assert_not_called()


def test_on_kill_cancels_unless_told_not_to(backend: mock.Mock) -> None:
    _sensor().on_kill()
    backend.cancel.assert_called_once_with("run-9")
    backend.cancel.reset_mock()
    _sensor(cancel_on_kill=False).on_kill()
    backend.cancel.assert_not_called()
