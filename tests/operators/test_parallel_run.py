"""SubmitParallelRunOperator: request building, reattach on retry, cancel on kill, waiting modes."""

from __future__ import annotations

from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from azureml_parallel_r.exceptions import ParallelRunFailedError
from azureml_parallel_r.models import DatasetRef, RunRef, RunState
from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator
from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger

DATASET = DatasetRef("inputs", 2, "r-script-inputs/2026-11-24", 30).to_dict()
KEY = {
    "dag_id": "r_parallel_batch",
    "dag_run_id": "scheduled__2026-11-24",
    "task_id": "the_task",
    "dataset": "inputs:2",
}
REF = RunRef("run-9", "https://ml.azure.com/runs/run-9", "r-script-outputs/2026-11-24/run-9", "azureml")


def _op(**kwargs) -> SubmitParallelRunOperator:
    return SubmitParallelRunOperator(task_id="submit", dataset=DATASET, **kwargs)


def test_submits_the_request_and_pushes_run_id_and_url(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    op = _op(
        r_args=["--size", "64"],
        mini_batch_size="5",
        process_count_per_node="",
        error_threshold="2",
        allowed_failed_percent=10,
        output_path="r-script-outputs/2026-11-24/{run-id}",
    )
    assert op.execute(context) == REF.to_dict()
    request = backend.submit.call_args.args[0]
    assert request.run_key == KEY
    settings = request.settings
    assert (settings.mini_batch_size, settings.process_count_per_node, settings.error_threshold) == (5, None, 2)
    assert settings.allowed_failed_percent == 10.0 and settings.allowed_failed_count is None
    assert settings.invocation_timeout == 5 * 300 + 60  # derived from the default per-file limit
    assert request.r_args == ["--size", "64"] and request.dataset.file_count == 30
    assert request.output_path == "r-script-outputs/2026-11-24/{run-id}"
    context["ti"].xcom_push.assert_has_calls(
        [mock.call(key="run_id", value="run-9"), mock.call(key="run_url", value=REF.url)]
    )


def test_a_retried_task_reattaches_instead_of_submitting_again(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = RunRef(**{**REF.to_dict(), "reattached": True})
    assert _op(experiment_name="nightly-r").execute(context)["reattached"] is True
    backend.submit.assert_not_called()
    backend.find_run.assert_called_once_with(
        {
            "dag_id": "r_parallel_batch",
            "dag_run_id": "scheduled__2026-11-24",
            "task_id": "the_task",
            "dataset": "inputs:2",
        },
        experiment_name="nightly-r",
    )


def test_on_kill_cancels_the_run(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = REF
    op = _op()
    op.on_kill()
    backend.cancel.assert_not_called()
    op.execute(context)
    op.on_kill()
    backend.cancel.assert_called_once_with("run-9")


def test_wait_for_completion_deferrable_hands_over_to_the_trigger(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = REF
    with pytest.raises(TaskDeferred) as deferred:
        _op(wait_for_completion=True, deferrable=True, poll_interval=7).execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, ParallelRunTrigger)
    assert trigger.serialize()[1] == {
        "run_id": "run-9",
        "azureml_parallel_r_conn_id": "azureml_parallel_r_default",
        "poll_interval": 7,
        "cancel_on_kill": True,
    }
    assert deferred.value.method_name == "execute_complete"


def test_wait_for_completion_in_the_worker(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = REF
    backend.get_status.side_effect = [RunState("run-9", "Running"), RunState("run-9", "Finished")]
    assert _op(wait_for_completion=True, deferrable=False, poll_interval=0).execute(context)["run_id"] == "run-9"


def test_a_failed_run_fails_the_task_with_its_summary(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = REF
    backend.get_status.return_value = RunState("run-9", "Failed", "too many errors")
    backend.describe_failure.return_value = "Pipeline run run-9 is Failed: ... - bad.png: not a PNG"
    with pytest.raises(ParallelRunFailedError, match=r"bad\.png: not a PNG"):
        _op(wait_for_completion=True, deferrable=False, poll_interval=0).execute(context)


def test_execute_complete(backend: mock.Mock, context: dict) -> None:
    op = _op()
    assert (
        op.execute_complete(context, {"status": "success", "message": "ok", "run_id": "run-9"}, REF.to_dict())
        == REF.to_dict()
    )
    backend.describe_failure.return_value = "summary of run-9"
    with pytest.raises(ParallelRunFailedError, match="summary of run-9"):
        op.execute_complete(context, {"status": "error", "message": "Failed", "run_id": "run-9"}, REF.to_dict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "not rendered"}, "dataset must be the register task's XCom"),
        ({"dataset": {"name": "inputs"}}, "dataset must be the register task's XCom"),
        ({"r_mode": "fast"}, "r_mode must be one of 'worker', 'per-file'"),
        ({"r_args": "--size 64"}, "r_args must be a list of strings"),
        ({"output_path": "/tmp/outputs/{run-id}"}, "output_path '/tmp/outputs/{run-id}' is an absolute path"),
        ({"append_row_file_name": "validation.json"}, "is a name the run's output folder uses itself"),
    ],
)
def test_bad_arguments_fail_without_retries(backend: mock.Mock, context: dict, kwargs: dict, message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    op = SubmitParallelRunOperator(task_id="s", **{"dataset": DATASET, **kwargs})
    with pytest.raises(AirflowFailException, match=message):
        op.execute(context)
    backend.submit.assert_not_called()


def test_an_r_script_that_is_refused_fails_without_retries(backend: mock.Mock, context: dict) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from azureml_parallel_r.r_scripts import RScriptError

    backend.find_run.return_value = None
    backend.check_r_script.side_effect = RScriptError("r_script '/etc/passwd' is not under a folder R scripts may come")
    with pytest.raises(AirflowFailException, match="is not under a folder R scripts may come"):
        _op().execute(context)
    backend.submit.assert_not_called()


@pytest.mark.parametrize("size", [1, 10, 200])
def test_azures_default_invocation_timeout_is_accepted_for_any_mini_batch(backend, context, size: int) -> None:
    """The operator refused Azure's own default, run_invocation_timeout=60 s, for any mini-batch: three of Microsoft's
    samples failed on it. It is accepted, and the per-file limit fitted inside it reaches the entry script."""
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    _op(mini_batch_size=size, run_invocation_timeout=60).execute(context)
    request = backend.submit.call_args.args[0]
    assert (request.settings.invocation_timeout, request.settings.file_timeout) == (60, 54)
    assert request.entry_arguments()[request.entry_arguments().index("--file-timeout") + 1] == "54"


def test_a_per_file_limit_that_cannot_fit_is_a_warning_not_a_refusal(backend, context, capfd) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    _op(mini_batch_size=10, file_timeout=300, run_invocation_timeout=60).execute(context)
    backend.submit.assert_called_once()
    assert "file_timeout=300 s does not fit inside run_invocation_timeout=60 s" in capfd.readouterr().out


def test_a_request_the_engine_would_refuse_fails_before_anything_is_submitted(backend, context) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    backend.find_run.return_value = None
    backend.check_request.side_effect = ValueError("'--r-arg=$HOME' holds '$', which no quoting protects there")
    with pytest.raises(AirflowFailException, match="which no quoting protects"):
        _op(r_args=["$HOME"]).execute(context)
    backend.submit.assert_not_called()


def test_the_logging_level_reaches_the_request(backend, context) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    _op(logging_level="debug").execute(context)
    assert backend.submit.call_args.args[0].settings.logging_level == "DEBUG"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mini_batch_size", "ten", "mini_batch_size must be a whole number, got 'ten'"),
        ("node_count", 2.5, "node_count must be a whole number, got 2.5"),
        ("allowed_failed_percent", "lots", "allowed_failed_percent must be a number, got 'lots'"),
    ],
)
def test_values_that_are_not_numbers_are_named(backend: mock.Mock, context: dict, field, value, message) -> None:
    backend.find_run.return_value = None
    with pytest.raises(ValueError, match=message):
        _op(**{field: value}).execute(context)
    backend.submit.assert_not_called()


class _TaskState(dict):
    """The task_state_store Airflow 3.3 gives a task: values that survive its retries and clears."""

    def set(self, key, value, **_):
        self[key] = value


def test_a_retry_reattaches_but_a_users_clear_submits_again(backend: mock.Mock, context: dict) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    context["task_state_store"] = state = _TaskState()
    context["ti"].try_number = 1
    _op().execute(context)
    first_key = backend.submit.call_args.args[0].run_key
    assert first_key["attempt"] == "1" and state["azureml_parallel_r_submission"]["done"] is True
    assert state["azureml_parallel_r_submission"]["submission"] == first_key["submission"]
    # the user clears the task: try 2 must process the folder again (a new attempt), not reattach to try 1's run
    context["ti"].try_number = 2
    _op().execute(context)
    assert backend.find_run.call_args.args[0]["attempt"] == "2"
    assert backend.submit.call_args.args[0].run_key["attempt"] == "2"
    assert backend.submit.call_args.args[0].run_key["submission"] != first_key["submission"]
    # try 3 dies after submitting, before it finished: try 4 (an automatic retry) looks for try 3's run
    state["azureml_parallel_r_submission"] = {"attempt": "3", "submission": "try3token", "done": False}
    context["ti"].try_number = 4
    backend.find_run.return_value = RunRef(**{**REF.to_dict(), "reattached": True})
    backend.submit.reset_mock()
    assert _op().execute(context)["reattached"] is True
    assert (
        backend.find_run.call_args.args[0] | {"attempt": "3", "submission": "try3token"}
        == backend.find_run.call_args.args[0]
    )
    backend.submit.assert_not_called()


def test_a_reset_database_or_another_airflow_never_reattaches_to_a_run_it_did_not_submit(
    backend: mock.Mock, context: dict
) -> None:
    """The DAG run's id (scheduled__<date>) and the try number repeat after the metadata database is reset, or in a
    second Airflow over the same workspace; the task state does not survive, and its token makes the key its own."""
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    keys = []
    for _deployment in ("production", "the same after docker compose down -v"):
        context["task_state_store"] = _TaskState()
        context["ti"].try_number = 1
        _op().execute(context)
        keys.append(backend.find_run.call_args.args[0])
    assert keys[0]["attempt"] == keys[1]["attempt"] == "1" and keys[0]["dag_run_id"] == keys[1]["dag_run_id"]
    assert keys[0]["submission"] != keys[1]["submission"] and backend.submit.call_count == 2


def test_without_a_task_state_store_every_try_reattaches_and_the_log_says_a_clear_does_too(
    backend: mock.Mock, context: dict, capfd
) -> None:
    """Airflow 3.1 and 3.2 give a task no task_state_store: the run key has no attempt or token, so a retry and a
    user's clear both find the DAG run's run over the same dataset version, and the task log says so."""
    context.pop("task_state_store", None)
    backend.find_run.return_value = RunRef(**{**REF.to_dict(), "reattached": True})
    for try_number in (1, 2):
        context["ti"].try_number = try_number
        assert _op().execute(context)["reattached"] is True
        assert not {"attempt", "submission"} & set(backend.find_run.call_args.args[0])
    backend.submit.assert_not_called()
    printed = capfd.readouterr()
    assert "a clear does not process the folder again" in printed.out + printed.err


def test_the_run_key_names_the_dataset_version(backend: mock.Mock, context: dict) -> None:
    """A run over another version of the inputs (corrected files, registered again) is never reattached to."""
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    for version in (2, 3):
        SubmitParallelRunOperator(task_id="submit", dataset={**DATASET, "version": version}).execute(context)
    assert [call.args[0]["dataset"] for call in backend.find_run.call_args_list] == ["inputs:2", "inputs:3"]


def test_the_connections_and_the_operators_r_packages_reach_the_entry_script(backend: mock.Mock, context) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    backend.r_packages = ("terra>=1.7",)
    _op(r_packages="data.table, sf==1.0-14").execute(context)
    request = backend.submit.call_args.args[0]
    assert request.r_packages == ["terra>=1.7", "data.table", "sf==1.0-14"]
    assert request.entry_arguments()[-3:] == [
        "--r-package=terra>=1.7",
        "--r-package=data.table",
        "--r-package=sf==1.0-14",
    ]
    backend.check_r_script.assert_called_once_with(request.r_script, request.r_packages)


@pytest.mark.parametrize(
    ("file_count", "processes", "expected"),
    [(30, None, 1), (30_000, None, 200), (8_000, 2, 200), (4_000, 2, 200), (2_000, 8, 25)],
)
def test_an_unset_mini_batch_size_is_chosen_from_the_files_and_processes(
    backend, context, file_count, processes, expected
) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    dataset = {**DATASET, "file_count": file_count}
    SubmitParallelRunOperator(task_id="submit", dataset=dataset, process_count_per_node=processes).execute(context)
    settings = backend.submit.call_args.args[0].settings
    assert settings.mini_batch_size == expected
    backend.processes_per_node.assert_called_with(processes)  # the engine says what an unset count means
    assert settings.invocation_timeout == expected * 300 + 60  # derived from the chosen size


def test_the_chosen_mini_batch_size_is_said_in_the_log(backend, context) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    op = _op(process_count_per_node=2)
    with mock.patch.object(type(op), "log", new_callable=mock.PropertyMock) as log:
        op.execute(context)
    said = [call.args[0] % call.args[1:] for call in log.return_value.info.call_args_list if call.args]
    assert (
        "mini_batch_size unset: 2 files per mini-batch, for 30 files over 2 worker process(es) (about 10 "
        "mini-batches each, at most 200 files)" in said
    )


def test_a_given_mini_batch_size_is_kept(backend, context) -> None:
    backend.find_run.return_value = None
    backend.submit.return_value = REF
    _op(mini_batch_size=7).execute(context)
    assert backend.submit.call_args.args[0].settings.mini_batch_size == 7
    backend.processes_per_node.assert_not_called()
