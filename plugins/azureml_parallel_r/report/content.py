"""What the run report shows, as JSON: a DAG run's pipeline run (engine, workspace, link, dataset, R script,
scale), its outcome (validation's counts, durations, throughput) or, while it runs, its progress, and its failed
files a page at a time.

Everything comes from what the tasks and the engines already wrote: the submit task's record and the validation
report (XComs, :mod:`~azureml_parallel_r.report.sources`), the run's status from the engine while it runs, and the
complete failure list (``validation-failures.jsonl``) from the run's output folder, through the backend, so it works
on every engine. Nothing lists ``results/``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from azureml_parallel_r.models import error_text
from azureml_parallel_r.output_checks import FAILURES_NAME
from azureml_parallel_r.repairs import UNFINISHED_DAG_RUN_STATES
from azureml_parallel_r.report.records import RERUN_FAILED_OF
from azureml_parallel_r.report.sources import DagRunRecords
from azureml_parallel_r.validation_report import ValidationReport

if TYPE_CHECKING:
    from azureml_parallel_r.backends.base import ParallelRunBackend

PAGE_LIMIT = 500  # failures per page at most
CACHED_RUNS = 4  # failure lists kept parsed in memory (the last runs looked at)

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


def _location(backend: ParallelRunBackend, output_path: str) -> str:
    """A run's output folder as its storage names it (``file://host/...``, ``wasbs://container@account/...``)."""
    where = backend.storage_location(output_path)
    if where.container:
        return f"{where.scheme}://{where.container}@{where.authority}/{where.path}"
    return f"{where.scheme}://{where.authority}{where.path}"


def _backend(conn_id: str) -> Any:
    from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook

    return AzureMLParallelRunHook(azureml_parallel_r_conn_id=conn_id).get_conn()


def summary(found: DagRunRecords, backend_for: Any = _backend) -> dict[str, Any]:
    """The report's first screen for a DAG run.

    :param found: the DAG run's records.
    :param backend_for: the engine of a connection id (the hook's, by default).
    """
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
        return page
    page.update(submitted=True, submit_task_id=found.submit_task_id, run=_run_fields(record))
    validation = ValidationReport.from_dict(found.validation) if found.validation is not None else None
    if validation is not None:  # what the page shows of it (its failed files come page by page: failure_page)
        shown = validation.to_dict()
        page["validation"] = {key: shown.get(key) for key in PAGE_VALIDATION_FIELDS}
    try:
        backend = backend_for(record["conn_id"])
    except Exception as exc:
        page["problems"].append(f"connection {record.get('conn_id')!r}: {error_text(exc)}")
        return page
    try:
        page["run"]["workspace"] = backend.lineage_source()
        page["run"]["output_location"] = _location(backend, record["output_path"])
    except Exception as exc:
        page["problems"].append(f"the engine's storage: {error_text(exc)}")
    if validation is None:  # not validated yet: how far the run is, as the engine says
        try:
            state = backend.get_status(record["run_id"])
            page["progress"] = {
                "status": state.status,
                "message": state.message,
                "counts": state.counts,
                "started_at": state.started_at,
                "ended_at": state.ended_at,
            }
        except Exception as exc:
            page["problems"].append(f"the run's status: {error_text(exc)}")
    failed = validation.counts.failed if validation is not None else 0
    if failed:  # the button's run: this run's parameters, and the run it repairs
        page["rerun"] = {
            "conf": {**{k: v for k, v in found.conf.items() if k != RERUN_FAILED_OF}, RERUN_FAILED_OF: found.run_id},
            "files": failed,
        }
        if found.state in UNFINISHED_DAG_RUN_STATES:  # the repair task refuses it too: its files may still run
            page["rerun"]["disabled"] = f"the DAG run is {found.state}: rerun its failed files once it has ended"
    return page


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


class FailureLists:
    """The complete failure lists of the last runs looked at, parsed once each (a run can have 100,000)."""

    def __init__(self, size: int = CACHED_RUNS) -> None:
        self.size = size
        self._lists: OrderedDict[tuple[str, ...], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, found: DagRunRecords, backend_for: Any = _backend) -> list[dict[str, Any]]:
        """The run's failed files, as validation listed them (none before validation).

        :param found: the DAG run's records.
        :param backend_for: the engine of a connection id.
        """
        record = found.record
        if record is None or found.validation is None:
            return []
        validation = ValidationReport.from_dict(found.validation)
        key = (record["conn_id"], record["output_path"], json.dumps(dataclasses.asdict(validation.counts)))
        with self._lock:
            if key in self._lists:
                self._lists.move_to_end(key)
                return self._lists[key]
        if validation.failures_file == FAILURES_NAME:
            text = backend_for(record["conn_id"]).read_output_text(record["output_path"], FAILURES_NAME) or ""
            failures = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:  # a report from before the complete list was kept: its first 200
            failures = list(validation.failures)
        with self._lock:
            self._lists[key] = failures
            while len(self._lists) > self.size:
                self._lists.popitem(last=False)
        return failures


def failure_page(
    failures: list[dict[str, Any]], *, offset: int = 0, limit: int = 50, text: str = "", kind: str = ""
) -> dict[str, Any]:
    """One page of failed files, filtered by a text (in the file's path, kind, error or call, ignoring case) and a
    kind.

    :param failures: the run's failed files.
    :param offset: the first matching file shown.
    :param limit: how many at most (up to ``PAGE_LIMIT``).
    :param text: what the shown files contain.
    :param kind: the failure kind shown ("" for all).
    """
    needle = text.casefold()
    matching = [
        failure
        for failure in failures
        if (not kind or failure.get("kind") == kind)
        and (
            not needle
            or any(
                needle in str(failure.get(field) or "").casefold()
                for field in ("relative_path", "kind", "error", "call")
            )
        )
    ]
    offset, limit = max(0, offset), max(1, min(limit, PAGE_LIMIT))
    kinds: dict[str, int] = {}
    for failure in failures:
        kinds[str(failure.get("kind"))] = kinds.get(str(failure.get("kind")), 0) + 1
    return {
        "total": len(failures),
        "matching": len(matching),
        "offset": offset,
        "limit": limit,
        "kinds": kinds,
        "items": matching[offset : offset + limit],
    }
