"""Operator: check that a run's outputs account for every input file (or partition of a table), and write
validation.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from azureml_parallel_r.compute.records import VALIDATION_REPORT, ResultRow
from azureml_parallel_r.exceptions import OutputValidationError, not_retried
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.links import RunReportLink
from azureml_parallel_r.models import DatasetFilesMissingError, DatasetRef, RegisteredFiles, RunRef
from azureml_parallel_r.output_checks import FAILURES_NAME, failures_jsonl, validate_outputs
from azureml_parallel_r.repairs import chain_output_paths, repair_chain
from azureml_parallel_r.run_identity import run_date

if TYPE_CHECKING:
    from airflow.sdk import Context

REPORT_NAME = VALIDATION_REPORT


class ValidateParallelRunOutputsOperator(BaseOperator):
    """Validate a finished run's outputs against its input dataset.

    Every file of the dataset must have a result row whose listed outputs exist under ``results/``, or be
    among the allowed failures; rows must parse and match the dataset. Writes ``validation.json`` (counts, the first
    200 failures, durations with their histogram, throughput) and ``validation-failures.jsonl`` (every failed or
    missing file with its R error, call, warnings and stderr tail) beside the outputs, returns the report via XCom,
    and fails with a readable report otherwise (the report is in XCom then too: the run report reads it). With
    ``outlets``, each Asset event carries the output path, the run id and the run's date in its extra, and the date
    as its partition (Airflow 3.2+), so a downstream DAG can be scheduled per date (``PartitionedAssetTimetable``).
    A repair run (its dataset's ``rerun_of``) is validated over the files it reran; its report says how many of the
    repaired run's failed files now succeeded and which still fail (``repair``), and its event's ``date`` is the
    repaired run's, with ``output_paths`` naming both output folders (the repaired one first), so that a downstream
    DAG finds every file's results.

    :param run: the submit task's XCom (run_id, output_path, ...).
    :param dataset: the register task's XCom (name, version, path, file_count).
    :param allowed_failures: how many input files may have no results (-1: any number; default 0: validation passes
        only when every file has results, whatever the run tolerated: pass the run's error_threshold to agree).
    :param allowed_failure_patterns: glob patterns of inputs that may always fail (not counted).
    :param azureml_parallel_r_conn_id: the Airflow connection that selects the engine (templated).
    """

    template_fields: Sequence[str] = (
        "run",
        "dataset",
        "allowed_failures",
        "allowed_failure_patterns",
        "azureml_parallel_r_conn_id",
    )
    ui_color = "#c8f7c5"
    operator_extra_links = (RunReportLink(),)

    def __init__(
        self,
        *,
        run: dict[str, Any] | str,
        dataset: dict[str, Any] | str,
        allowed_failures: int = 0,
        allowed_failure_patterns: Sequence[str] = (),
        azureml_parallel_r_conn_id: str = AzureMLParallelRunHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.dataset = dataset
        self.allowed_failures = allowed_failures
        self.allowed_failure_patterns = allowed_failure_patterns
        self.azureml_parallel_r_conn_id = azureml_parallel_r_conn_id
        self._lineage: dict[str, Any] = {}

    @cached_property
    def hook(self) -> AzureMLParallelRunHook:
        return AzureMLParallelRunHook(azureml_parallel_r_conn_id=self.azureml_parallel_r_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        with not_retried():
            run, dataset, allowed_failures = self._checked_arguments()
        backend = self.hook.get_conn()
        try:  # the registered list is the truth of what the run was given: without it, validation fails saying so
            registered, files_unknown = backend.registered_files(dataset), None
        except DatasetFilesMissingError as exc:
            registered, files_unknown = RegisteredFiles([]), str(exc)
        results = backend.fetch_results(run.run_id)
        report = validate_outputs(
            self._items(dataset, registered, results),
            results,
            allowed_failures=allowed_failures,
            allowed_failure_patterns=list(self.allowed_failure_patterns or ()),
            dataset=dataset,
            changed={} if dataset.tabular else backend.changed_files(dataset, registered),
            files_unknown=files_unknown,
        )
        rerun_of = dataset.rerun_of
        report = report.with_changes(
            output_path=run.output_path,
            dataset=dataset.to_dict(),
            failures_file=FAILURES_NAME,
            repair=None
            if not rerun_of
            else {  # a repair run: what became of the failed files of the run it repairs
                "repaired_dag_run_id": rerun_of.get("dag_run_id"),
                "repaired_output_path": rerun_of.get("output_path"),
                "original_failures": rerun_of.get("failed_files"),
                "now_succeeded": report.counts.succeeded,
                "still_failing": report.counts.failed,
                "date": rerun_of.get("date"),
                "chain": [link.get("dag_run_id") for link in repair_chain(rerun_of)],
            },
        )
        # the complete list first: a validation.json that names it never points at a file that is not there
        backend.write_output_file(run.run_id, FAILURES_NAME, failures_jsonl(report.all_failures))
        location = backend.write_output_file(run.run_id, REPORT_NAME, json.dumps(report.to_dict(), indent=1).encode())
        self._lineage = {
            "inputs": [dataset.path, run.output_path],
            "outputs": [f"{run.output_path}/{REPORT_NAME}"],
            "run_id": run.run_id,
        }
        report = report.with_changes(report_location=location)
        text = report.summary()
        self.log.info("%s\nReport: %s", text, location)
        # a repair's outputs complete the date its chain's first run processed: the event names every folder of the
        # chain, the first run's first, and this one's last
        date = (rerun_of or {}).get("date") or run_date(context["dag_run"])
        output_paths: list[Any] = [*chain_output_paths(rerun_of), run.output_path]  # JSON for the event's extra
        for outlet in self.outlets or ():
            event = context["outlet_events"][outlet]
            event.extra = {
                "output_path": run.output_path,
                "run_id": run.run_id,
                "date": date,
                "output_paths": output_paths,
            }
            if hasattr(event, "add_partitions"):  # Airflow 3.2+: partitioned asset events, one partition per date
                event.add_partitions(date)
        if not report.passed:
            # the run report and a repair run read the result of a failed validation too
            context["ti"].xcom_push(key="return_value", value=report.to_dict())
            raise OutputValidationError(text)
        return report.to_dict()

    @staticmethod
    def _items(dataset: DatasetRef, registered: RegisteredFiles, results: Any) -> list[str]:
        """What the run must account for: the registered files, or a table's partitions (recorded at registration).
        A table without partition keys is cut by the runtime, by size, into mini-batches no registration knows: each
        one that reported (a result row or a failure record) is an item, and the run's own status says whether any
        failed without a word."""
        if not dataset.tabular or registered.partitions is not None:
            return registered.items
        reported = set(results.failures)
        for line in results.rows:
            try:
                row = ResultRow.from_json(json.loads(line))
            except ValueError:
                continue  # validation reports a row that does not parse
            if row is not None:
                reported.add(row.relative_path)
        return sorted(reported)

    def _checked_arguments(self) -> tuple[RunRef, DatasetRef, int]:
        try:
            run, dataset = RunRef.from_dict(self.run), DatasetRef.from_dict(self.dataset)  # type: ignore[arg-type]
        except (TypeError, AttributeError):
            raise ValueError(
                f"run and dataset must be the submit and register tasks' XComs (dicts), got {self.run!r} and "
                f"{self.dataset!r}"
            ) from None
        try:
            allowed_failures = int(self.allowed_failures)
        except (TypeError, ValueError):
            raise ValueError(
                f"allowed_failures must be a whole number (-1: any), got {self.allowed_failures!r}"
            ) from None
        return run, dataset, allowed_failures

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (when its provider is installed): the input folder and the run's outputs read, the report
        written, and the pipeline run's id (:mod:`azureml_parallel_r.lineage`)."""
        from azureml_parallel_r.lineage import run_lineage

        return run_lineage(self.hook.get_conn(), **self._lineage) if self._lineage else None
