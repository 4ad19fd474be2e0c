"""What the run report shows, as JSON: a DAG run's pipeline run (engine, workspace, link, dataset, R script,
scale), its outcome (validation's counts, durations, throughput) or, while it runs, its progress per file, what it
cost, whether the user may rerun its failed files, and, for a DAG run that never submitted one, its tasks' states and
the failing task's error.

Everything comes from what the tasks and the engines already wrote: the submit task's record and the validation
report (XComs, :mod:`~azureml_parallel_r.report.sources`), the run's status from the engine, the count of failure
records in its output folder while it runs, and the complete failure list (``validation-failures.jsonl``,
:mod:`~azureml_parallel_r.report.failures`), through the engine, so it works on every engine. Nothing lists
``results/``. Engines come from :class:`~azureml_parallel_r.report.services.ReadServices`: one per connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.compute.records import FAILURES_DIR, LOGS_DIR
from azureml_parallel_r.models import error_text
from azureml_parallel_r.repairs import UNFINISHED_DAG_RUN_STATES
from azureml_parallel_r.report.cost import read_price_table, run_cost
from azureml_parallel_r.report.records import RERUN_FAILED_OF
from azureml_parallel_r.report.services import ReadServices
from azureml_parallel_r.report.sources import DagRunRecords
from azureml_parallel_r.validation_report import ValidationReport

if TYPE_CHECKING:
    from azureml_parallel_r.backends.base import ParallelRunBackend

# what the page shows of the validation report (the report's JavaScript reads these keys)
PAGE_VALIDATION_FIELDS = (
    "passed",
    "status",
    "problems",
    "notes",
    "counts",
    "durations",
    "throughput",
    "allowed_failures",
    "repair",
    "report_location",
)
NOT_OURS = (
    "This DAG has no task of azureml-parallel-r, so it has no run report: the report shows the pipeline runs that "
    "its operators submit."
)


def _location(backend: ParallelRunBackend, output_path: str) -> str:
    """A run's output folder as its storage names it (``file://host/...``, ``wasbs://container@account/...``)."""
    where = backend.storage_location(output_path)
    if where.container:
        return f"{where.scheme}://{where.container}@{where.authority}/{where.path}"
    return f"{where.scheme}://{where.authority}{where.path}"


def _services(backend_for: ReadServices | Callable[[str], Any]) -> ReadServices:
    return backend_for if isinstance(backend_for, ReadServices) else ReadServices(make=backend_for, ttl=0.0)


def summary(
    found: DagRunRecords,
    backend_for: ReadServices | Callable[[str], Any],
    *,
    may_trigger: tuple[bool, str] = (True, ""),
    prices: Callable[[], dict[str, Any]] = read_price_table,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The report's first screen for a DAG run.

    :param found: the DAG run's records.
    :param backend_for: the engines (:class:`ReadServices`), or the engine of a connection id.
    :param may_trigger: whether the user may trigger the DAG (Airflow's auth manager answers), and why not.
    :param prices: the VM price table (:func:`~azureml_parallel_r.report.cost.read_price_table`).
    :param now: the time now (epoch seconds).
    """
    services = _services(backend_for)
    page: dict[str, Any] = {
        "dag_id": found.dag_id,
        "dag_run_id": found.run_id,
        "dag_run_state": found.state,
        "task_states": found.task_states,
        "repairs": found.repairs,
        "problems": [],
    }
    record = found.record
    if record is None:
        page["submitted"] = False
        if not found.uses_package:
            page["not_ours"] = NOT_OURS
        page["task_errors"] = found.task_errors
        return page
    page.update(submitted=True, submit_task_id=found.submit_task_id, run=_run_fields(record))
    validation = ValidationReport.from_dict(found.validation) if found.validation is not None else None
    if validation is not None:  # what the page shows of it (its failed files come page by page: failure_page)
        shown = validation.to_dict()
        page["validation"] = {key: shown.get(key) for key in PAGE_VALIDATION_FIELDS}
    _rerun(page, found, validation, may_trigger, tabular=(record.get("dataset") or {}).get("kind") == "table")
    conn_id = record["conn_id"]
    try:
        backend = services(conn_id)
    except Exception as exc:
        page["problems"].append(f"connection {conn_id!r}: {error_text(exc)}")
        return page
    try:
        page["run"]["workspace"] = backend.lineage_source()
        page["run"]["output_location"] = _location(backend, record["output_path"])
        if record.get("engine") == "local":  # where its log files are, to copy (a failed file names its own)
            page["run"]["logs_folder"] = f"{backend.storage_location(record['output_path']).path}/{LOGS_DIR}"
    except Exception as exc:
        page["problems"].append(f"the engine's storage: {error_text(exc)}")
    state = _state(services, conn_id, record["run_id"], page["problems"])
    if validation is None and state is not None:  # not validated yet: how far the run is, file by file
        page["progress"] = _progress(backend, record, state, page["problems"])
    page["cost"] = _cost(services, conn_id, record, state, validation, prices, now(), page["problems"])
    return page


def _rerun(
    page: dict[str, Any],
    found: DagRunRecords,
    validation: ValidationReport | None,
    may_trigger: tuple[bool, str],
    *,
    tabular: bool = False,
) -> None:
    """The button's run: this run's parameters and the run it repairs; disabled, with the reason, when it cannot run
    (a table's failed partitions are not rerun alone: register_dataset refuses that, and the button says so)."""
    failed = validation.counts.failed if validation is not None else 0
    if not failed:
        return
    page["rerun"] = {
        "conf": {**{k: v for k, v in found.conf.items() if k != RERUN_FAILED_OF}, RERUN_FAILED_OF: found.run_id},
        "files": failed,
    }
    allowed, why_not = may_trigger
    if tabular:
        page["rerun"]["disabled"] = "a table's failed partitions are not rerun alone yet: trigger its date again"
    elif not allowed:
        page["rerun"]["disabled"] = why_not
    elif found.state in UNFINISHED_DAG_RUN_STATES:  # the repair task refuses it too: its files may still run
        page["rerun"]["disabled"] = f"the DAG run is {found.state}: rerun its failed files once it has ended"


def _state(services: ReadServices, conn_id: str, run_id: str, problems: list[str]) -> Any:
    """The run's status from its engine (kept once it has ended), or None when it cannot be read."""
    try:
        return services.fact(
            conn_id, ("status", run_id), lambda engine: engine.get_status(run_id), lambda state: state.terminal
        )
    except Exception as exc:
        problems.append(f"the run's status: {error_text(exc)}")
        return None


def _progress(backend: Any, record: dict[str, Any], state: Any, problems: list[str]) -> dict[str, Any]:
    """How far the run is: its status, and its files (the dataset's count; done and failed as the engine counts
    them; the failure records written so far, which appear file by file while mini-batches retry)."""
    counts = dict(state.counts or {})
    progress = {
        "status": state.status,
        "message": state.message,
        "total_files": (record.get("dataset") or {}).get("file_count"),
        "succeeded_files": counts.get("succeeded_files"),
        "failed_files": counts.get("failed_files"),
        "mini_batches": [counts.get("completed_mini_batches"), counts.get("total_mini_batches")],
        "failure_records": None,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
    }
    try:
        progress["failure_records"] = backend.count_output_files(record["output_path"], FAILURES_DIR)
    except Exception as exc:
        problems.append(f"the run's failure records: {error_text(exc)}")
    return progress


def _cost(
    services: ReadServices,
    conn_id: str,
    record: dict[str, Any],
    state: Any,
    validation: ValidationReport | None,
    prices: Callable[[], dict[str, Any]],
    now: float,
    problems: list[str],
) -> dict[str, Any] | None:
    engine = str(record.get("engine"))
    vm_size = None
    if engine != "local":
        try:
            compute = services.fact(conn_id, ("compute",), lambda e: e.compute_summary(), lambda _value: True)
            vm_size = compute.get("vm_size")
        except Exception as exc:
            problems.append(f"the compute's VM size: {error_text(exc)}")
    try:
        table = prices() if engine != "local" else {"prices": {}}
    except Exception as exc:
        problems.append(f"the VM price table: {error_text(exc)}")
        table = {"prices": {}}
    succeeded = validation.counts.succeeded if validation is not None else None
    if succeeded is None and state is not None:
        succeeded = (state.counts or {}).get("succeeded_files")
    return run_cost(
        engine=engine,
        node_count=record.get("node_count"),
        vm_size=vm_size,
        started_at=getattr(state, "started_at", None),
        ended_at=state.ended_at if state is not None and state.terminal else None,
        now=now,
        succeeded_files=succeeded,
        cpu_seconds=getattr(state, "cpu_seconds", None),
        prices=table,
    )


def _run_fields(record: dict[str, Any]) -> dict[str, Any]:
    url = str(record.get("url") or "")
    return {
        "run_id": record.get("run_id"),
        "engine": record.get("engine"),
        "run_url": url if url.startswith(("https://", "http://")) else None,  # a local run's is a file:// folder
        "output_path": record.get("output_path"),
        "dataset": record.get("dataset"),
        "r_script": record.get("r_script"),
        "r_args": record.get("r_args") or [],
        "r_packages": record.get("r_packages") or [],
        "r_mode": record.get("r_mode"),
        "node_count": record.get("node_count"),
        "process_count_per_node": record.get("process_count_per_node"),
        "mini_batch_size": record.get("mini_batch_size"),
        "error_threshold": record.get("error_threshold"),
        "rerun_of": record.get("rerun_of"),
    }
