"""RegisterFileDatasetOperator: tags for idempotency, skip or fail on empty input."""

from __future__ import annotations

from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from azureml_parallel_r.exceptions import EmptyInputError
from azureml_parallel_r.inputs import InputFolderError
from azureml_parallel_r.models import DatasetRef
from azureml_parallel_r.operators.dataset import RegisterFileDatasetOperator


def test_registers_with_date_path_and_run_key_tags(backend: mock.Mock, context: dict) -> None:
    backend.register_file_dataset.return_value = DatasetRef("inputs", 4, "r-script-inputs/2026-11-24", 12)
    op = RegisterFileDatasetOperator(task_id="t", path=" r-script-inputs/2026-11-24/", dataset_name="inputs")
    assert op.execute(context) == {
        "name": "inputs",
        "version": 4,
        "path": "r-script-inputs/2026-11-24",
        "file_count": 12,
        "reused": False,
        "rerun_of": None,
        "kind": "files",
        "partition_keys": [],
        "partitions": None,
    }
    backend.register_file_dataset.assert_called_once_with(
        "r-script-inputs/2026-11-24",
        name="inputs",
        tags={
            "logical_date": "2026-11-24",
            "path": "r-script-inputs/2026-11-24",
            "dag_id": "r_parallel_batch",
            "dag_run_id": "scheduled__2026-11-24",
            "task_id": "the_task",
        },
    )


def test_runs_without_a_logical_date_use_their_run_after_date(backend: mock.Mock, context: dict) -> None:
    backend.register_file_dataset.return_value = DatasetRef("inputs", 1, "p", 1)
    context["dag_run"].logical_date = None
    RegisterFileDatasetOperator(task_id="t", path="p").execute(context)
    assert backend.register_file_dataset.call_args.kwargs["tags"]["logical_date"] == "2026-11-25"


def test_empty_input_skips_with_the_path_by_default(backend: mock.Mock, context: dict) -> None:
    backend.register_file_dataset.return_value = DatasetRef("inputs", 0, "r-script-inputs/2026-11-30", 0)
    with pytest.raises(AirflowSkipException, match="No input files under datastore path 'r-script-inputs/2026-11-30'"):
        RegisterFileDatasetOperator(task_id="t", path="r-script-inputs/2026-11-30").execute(context)


def test_empty_input_fails_when_asked(backend: mock.Mock, context: dict) -> None:
    backend.register_file_dataset.return_value = DatasetRef("inputs", 0, "p", 0)
    with pytest.raises(EmptyInputError, match="if_empty='fail'"):
        RegisterFileDatasetOperator(task_id="t", path="p", if_empty="fail").execute(context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": " / "}, "the input folder .* is empty"),
        ({"path": "p", "if_empty": "x"}, "if_empty must be"),
        ({"path": "/etc"}, r"the input folder \(path, the DAG's input_path\) '/etc' is an absolute path"),
        ({"path": "azureml://datastores/workspaceblobstore/paths/r-script-inputs/2026-11-24"}, "is a URL"),
        ({"path": "r-script-inputs/../../x"}, "has an empty, '.' or '..' part"),
        ({"path": "p", "input_kind": "tables"}, "input_kind must be one of files, table"),
        ({"path": "p", "partition_keys": ["Store"]}, "set input_kind to 'table'"),
        ({"path": "p", "input_kind": "table", "partition_keys": ["Store", " "]}, "must be column names"),
        ({"path": "p", "input_kind": "table", "partition_keys": "Store,Store"}, "names a column twice"),
        ({"path": "p", "input_kind": "table", "rerun_failed_of": "manual__x"}, "not rerun alone yet"),
    ],
)
def test_bad_arguments_fail_without_retries_before_anything_is_registered(
    backend: mock.Mock, context: dict, kwargs: dict, message: str
) -> None:
    """An absolute path or a URL was read as a folder under the datastore root (``/etc`` as ``etc``): a green, skipped
    run. It is refused, and no retry can fix it: Airflow's fail-without-retry exception."""
    with pytest.raises(AirflowFailException, match=message):
        RegisterFileDatasetOperator(task_id="t", **kwargs).execute(context)
    backend.register_file_dataset.assert_not_called()
    backend.register_table_dataset.assert_not_called()


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["Store", "Brand"], ["Store", "Brand"]),
        (" Store, Brand", ["Store", "Brand"]),
        (None, []),
        ("None", []),
        ([], []),
    ],
)
def test_a_table_is_registered_with_its_partition_keys(backend: mock.Mock, context: dict, keys, expected) -> None:
    """The form's keys arrive as a list (a native template), or as text from a plain one: both are the columns."""
    backend.register_table_dataset.return_value = DatasetRef(
        "oj", 1, "p", 13, kind="table", partition_keys=expected, partitions=12 if expected else None
    )
    op = RegisterFileDatasetOperator(task_id="t", path="p", dataset_name="oj", input_kind="table", partition_keys=keys)
    assert op.execute(context)["kind"] == "table"
    assert backend.register_table_dataset.call_args.kwargs["partition_keys"] == expected
    backend.register_file_dataset.assert_not_called()


def test_a_folder_that_cannot_be_listed_whole_fails_without_retries(backend: mock.Mock, context: dict) -> None:
    backend.register_file_dataset.side_effect = InputFolderError("the input folder x cannot be processed whole")
    with pytest.raises(AirflowFailException, match="cannot be processed whole"):
        RegisterFileDatasetOperator(task_id="t", path="r-script-inputs/2026-11-24").execute(context)


# -- a repair run: the failed files of an earlier run ------------------------------------------------------------------

RECORD = {
    "run_id": "pipe-1",
    "output_path": "r-script-outputs/2026-11-24/pipe-1",
    "date": "2026-11-24",
    "dataset": DatasetRef("inputs", 4, "r-script-inputs/2026-11-24", 3).to_dict(),
}


def _repaired_run(backend: mock.Mock, context: dict, succeeded: list[str]) -> None:
    import json

    from azureml_parallel_r.models import RunResults, RunState

    context["ti"].run_id = "manual__repair"
    context["ti"].dag_id = "r_parallel_batch"
    context["ti"].xcom_pull.return_value = RECORD
    backend.list_dataset_files.return_value = ["a.png", "b.png", "sub/c.png"]
    rows = [json.dumps({"relative_path": path, "outputs": []}) for path in succeeded]
    backend.fetch_results.return_value = RunResults(RunState("pipe-1", "Failed"), rows)
    backend.get_status.return_value = RunState("pipe-1", "Failed")


def test_a_repair_registers_exactly_the_failed_and_missing_files_of_the_run_it_repairs(backend, context) -> None:
    _repaired_run(backend, context, succeeded=["a.png"])
    backend.register_file_subset.return_value = DatasetRef("inputs", 5, "r-script-inputs/2026-11-24", 2)
    op = RegisterFileDatasetOperator(
        task_id="t", path="r-script-inputs/2026-12-01", dataset_name="inputs", rerun_failed_of="scheduled__2026-11-24"
    )
    dataset = op.execute(context)
    context["ti"].xcom_pull.assert_called_once_with(
        task_ids="submit_pipeline", run_id="scheduled__2026-11-24", key="run_record"
    )
    (path, files), kwargs = backend.register_file_subset.call_args
    assert (path, files) == ("r-script-inputs/2026-11-24", ["b.png", "sub/c.png"])  # its folder, not the template's
    assert kwargs["tags"]["rerun_failed_of"] == "scheduled__2026-11-24"
    assert kwargs["tags"]["path"] == "r-script-inputs/2026-11-24"
    backend.register_file_dataset.assert_not_called()
    link = {"dag_run_id": "scheduled__2026-11-24", "run_id": "pipe-1", "output_path": RECORD["output_path"]}
    assert dataset["rerun_of"] == {**link, "date": "2026-11-24", "failed_files": 2, "chain": [link]}


def test_a_repair_of_a_run_without_failures_skips(backend, context) -> None:
    _repaired_run(backend, context, succeeded=["a.png", "b.png", "sub/c.png"])
    op = RegisterFileDatasetOperator(task_id="t", path="p", rerun_failed_of="scheduled__2026-11-24")
    with pytest.raises(AirflowSkipException, match="left no failed or missing file"):
        op.execute(context)
    backend.register_file_subset.assert_not_called()


@pytest.mark.parametrize(
    ("repaired", "record", "message"),
    [
        ("manual__repair", RECORD, "names this very run"),
        ("scheduled__2026-11-24", None, "has no pipeline run submitted by task 'submit_pipeline'"),
    ],
)
def test_a_repair_of_an_unknown_run_fails_at_once_saying_why(backend, context, repaired, record, message) -> None:
    _repaired_run(backend, context, succeeded=[])
    context["ti"].xcom_pull.return_value = record
    with pytest.raises(AirflowFailException, match=message):
        RegisterFileDatasetOperator(task_id="t", path="p", rerun_failed_of=repaired).execute(context)


def test_a_repair_of_a_repair_keeps_the_first_runs_date_and_the_whole_chain(backend, context) -> None:
    """The run repaired is itself a repair (its record holds ``rerun_of``): the new repair continues its chain and
    keeps the chain's first date, not the repaired run's own trigger date."""
    _repaired_run(backend, context, succeeded=["a.png", "b.png"])
    first = {"dag_run_id": "scheduled__2026-11-20", "run_id": "pipe-0", "output_path": "r-script-outputs/2026-11-20/p0"}
    context["ti"].xcom_pull.return_value = {
        **RECORD,
        "date": "2026-11-24",
        "rerun_of": {**first, "date": "2026-11-20", "failed_files": 3},
    }
    backend.register_file_subset.return_value = DatasetRef("inputs", 6, "r-script-inputs/2026-11-20", 1)
    dataset = RegisterFileDatasetOperator(task_id="t", path="p", rerun_failed_of="manual__b").execute(context)
    assert dataset["rerun_of"]["date"] == "2026-11-20"  # the chain's first run's, not the repaired run's 2026-11-24
    assert [link["dag_run_id"] for link in dataset["rerun_of"]["chain"]] == ["scheduled__2026-11-20", "manual__b"]
    assert dataset["rerun_of"]["chain"][0] == first  # a record from before chains: its one link


@pytest.mark.parametrize("status", ["NotStarted", "Running"])
def test_a_repair_of_a_run_that_has_not_ended_is_refused_without_retries(backend, context, status: str) -> None:
    """Its rows are partial and its files in flight would be registered and processed by both runs."""
    from azureml_parallel_r.models import RunState

    _repaired_run(backend, context, succeeded=["a.png"])
    backend.get_status.return_value = RunState("pipe-1", status)
    with pytest.raises(
        AirflowFailException,
        match=rf"run scheduled__2026-11-24 has not ended: its pipeline run "
        rf"pipe-1 is {status}",
    ):
        RegisterFileDatasetOperator(task_id="t", path="p", rerun_failed_of="scheduled__2026-11-24").execute(context)
    backend.fetch_results.assert_not_called()
    backend.register_file_subset.assert_not_called()


def test_a_repair_of_a_dag_run_still_running_is_refused(backend, context, monkeypatch) -> None:
    from azureml_parallel_r.operators import dataset as module

    _repaired_run(backend, context, succeeded=["a.png"])
    monkeypatch.setattr(module, "_dag_run_state", lambda dag_id, run_id: "running")
    with pytest.raises(AirflowFailException, match="the DAG run is running"):
        RegisterFileDatasetOperator(task_id="t", path="p", rerun_failed_of="scheduled__2026-11-24").execute(context)
    backend.register_file_subset.assert_not_called()
