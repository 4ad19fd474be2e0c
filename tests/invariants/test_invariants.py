"""Invariants, not cases: generated input trees and R behaviours through the DAG's operators and the local engine.

Each example is a dated input folder (:mod:`tests.invariants.trees`: hostile names at any depth, links in and out, a
FIFO or a link to nothing, files added or changed after registration) whose files tell the R script what to do
(``behaviours.R``: succeed, fail with an R error, crash, quit, hang, exhaust memory, start a child that leaves its
process group, write outside its output_dir). It goes through ``register_dataset``, ``submit_pipeline`` (the real
operators, on the real local engine with real R), the run, and ``validate_outputs``; then, for some examples, the
failed files are fixed and a repair run reruns them. After every example:

1. every registered file has exactly one result row or exactly one failure record, never both;
2. no row, failure record or result is for anything that was not registered (a file under ``results/`` that no
   registered file owns fails validation);
3. nothing outside the input folder was read (every file R opened resolves inside it; a secret outside never
   reaches an output), and a folder with a link out is refused before anything is registered;
4. no process of the run outlives it;
5. validation passes exactly when every registered file has its results or is within the allowed failures, counting
   as failed every file whose input changed after registration;
6. a repair reruns exactly the failed files, and publishes the first run's date with both output folders.

``INVARIANT_EXAMPLES`` sets how many examples run (default 12, a fixed seed: the same examples every time, in about a
minute); ``INVARIANT_EXAMPLES=200 scripts/test.sh -k invariants`` is the long run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pendulum
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from azureml_parallel_r.backends.local import LocalBackend
from azureml_parallel_r.exceptions import OutputValidationError
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.models import DatasetRef
from azureml_parallel_r.operators.dataset import RegisterFileDatasetOperator
from azureml_parallel_r.operators.parallel_run import SubmitParallelRunOperator
from azureml_parallel_r.operators.validation import ValidateParallelRunOutputsOperator
from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME
from tests.conftest import live_processes
from tests.invariants.trees import (
    SUCCEEDING,
    InputFile,
    Tree,
    behaviour_of,
    change_after_registration,
    make_tree,
    remove_bad_entries,
    trees,
)
from tests.task_fixtures import _OutletEvent
from tests.waiting import wait_for_end, wait_until

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "behaviours.R"
DATE, REPAIR_DATE = "2026-11-20", "2026-11-25"
EXAMPLES = int(os.environ.get("INVARIANT_EXAMPLES", "12"))
LONG_RUN = "INVARIANT_EXAMPLES" in os.environ  # shrinks a counterexample (minutes): the suite's run only finds one
ASSET = Asset(name="outputs", uri="azureml-parallel-r://r-script-outputs")


class FakeTaskInstance:
    """What the operators use of a task instance: ids, and XComs kept in a store shared by the example's tasks."""

    def __init__(self, store: dict[tuple[str, str, str], Any], run_id: str, task_id: str) -> None:
        self.store, self.run_id, self.task_id = store, run_id, task_id
        self.dag_id, self.try_number = "r_parallel_batch", 1

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.run_id, self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, run_id: str | None = None, key: str = "return_value") -> Any:
        return self.store.get((run_id or self.run_id, task_ids, key))


def _context(store: dict, run_id: str, task_id: str, date: str) -> dict[str, Any]:
    when = pendulum.parse(date)
    dag_run = SimpleNamespace(run_id=run_id, logical_date=when, run_after=when, conf={})
    return {
        "ti": FakeTaskInstance(store, run_id, task_id),
        "dag_run": dag_run,
        "outlet_events": defaultdict(_OutletEvent),
    }


class Example:
    """One example's datastore, secret outside the input folder, markers and engine."""

    def __init__(self, tree: Tree, processes: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="apr-invariants-"))
        self.tree = tree
        self.datastore = self.root / "datastore"
        self.folder = self.datastore / "r-script-inputs" / DATE
        self.folder.mkdir(parents=True)
        self.secret_text = f"SECRET-{uuid.uuid4().hex}"
        self.secret = self.root / "outside" / "secret.txt"
        self.secret.parent.mkdir()
        self.secret.write_text(f"ok\n{self.secret_text}\n")
        self.trace = self.root / "trace.txt"
        self.trace.touch()
        self.marker = f"apr-invariant-{uuid.uuid4().hex[:12]}"
        self.backend = LocalBackend(str(self.datastore), process_count_per_node=processes, r_script_dirs=(str(HERE),))
        self.store: dict[tuple[str, str, str], Any] = {}

    def close(self) -> None:
        for pid in live_processes(self.marker):  # a failed example leaves nothing running either
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the DAG's tasks --------------------------------------------------------------------------------------------

    def register(self, run_id: str, date: str, **kwargs: Any) -> DatasetRef:
        context = _context(self.store, run_id, "register_dataset", date)
        op = RegisterFileDatasetOperator(task_id="register_dataset", path=f"r-script-inputs/{DATE}", **kwargs)
        dataset = op.execute(context)
        self.store[(run_id, "register_dataset", "return_value")] = dataset
        return DatasetRef.from_dict(dataset)

    def submit(self, run_id: str, date: str, dataset: DatasetRef, **settings: Any) -> dict[str, Any]:
        op = SubmitParallelRunOperator(
            task_id="submit_pipeline",
            dataset=dataset.to_dict(),
            r_script=str(SCRIPT),
            file_timeout=2,
            output_path=f"r-script-outputs/{date}/{{run-id}}",
            environment_variables={"APR_TRACE": str(self.trace), "APR_MARKER": self.marker},
            **settings,
        )
        ref = op.execute(_context(self.store, run_id, "submit_pipeline", date))
        state = wait_for_end(self.backend, ref["run_id"], timeout=240)
        assert state.status == "Finished", state.message  # error_threshold -1: every file may fail alone
        return ref

    def validate(self, run_id: str, date: str, ref: dict, dataset: DatasetRef, allowed: int) -> tuple[dict, Any]:
        context = _context(self.store, run_id, "validate_outputs", date)
        op = ValidateParallelRunOutputsOperator(
            task_id="validate_outputs", run=ref, dataset=dataset.to_dict(), allowed_failures=allowed, outlets=[ASSET]
        )
        with contextlib.suppress(OutputValidationError):
            op.execute(context)
        report = json.loads((self.datastore / ref["output_path"] / "validation.json").read_text())
        return report, context["outlet_events"][ASSET]

    # -- what the invariants read ------------------------------------------------------------------------------------

    def outputs(self, ref: dict) -> tuple[Counter, Counter, list[str]]:
        """The run's rows and failure records (each by input path) and the files under results/."""
        folder = self.datastore / ref["output_path"]
        rows_file = folder / DEFAULT_APPEND_ROW_FILE_NAME
        rows = Counter(json.loads(line)["relative_path"] for line in rows_file.read_text().split("\n") if line)
        records = Counter(
            json.loads(path.read_text())["relative_path"] for path in (folder / "failures").rglob("*.json")
        )
        results = folder / "results"
        files = [str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()] if results.is_dir() else []
        return rows, records, files


def _expected_failed(example: Example, registered: list[str]) -> set[str]:
    """The registered files validation must count as failed: R fails them, or their input changed after registration
    (whatever R did with it)."""
    changed = {os.path.realpath(example.folder / relative) for relative in example.tree.changed + example.tree.touched}
    failed = set()
    for relative in registered:
        item = behaviour_of(example.folder, example.tree, relative)
        assert item is not None, f"{relative!r} is registered but is none of the tree's files"
        if item.behaviour not in SUCCEEDING or os.path.realpath(example.folder / relative) in changed:
            failed.add(relative)
    return failed


def _check_run(example: Example, ref: dict, registered: list[str], report: dict, allowed: int) -> set[str]:
    """Invariants 1 to 5 for one run; returns the failed files validation counted."""
    rows, records, results = example.outputs(ref)
    registered_set = set(registered)
    # 1. exactly one row or exactly one failure record per registered file
    for relative in registered:
        assert (rows[relative], records[relative]) in ((1, 0), (0, 1)), (relative, rows[relative], records[relative])
    # 2. nothing for what was not registered
    assert set(rows) <= registered_set and set(records) <= registered_set, (set(rows) | set(records)) - registered_set
    owned = [name for name in results if any(name.startswith(f"{relative}/") for relative in rows)]
    strays = sorted(set(results) - set(owned))
    # 3. nothing outside the input folder was read
    inside = os.path.join(os.path.realpath(example.folder), "")
    read = [os.fsdecode(bytes.fromhex(line)) for line in example.trace.read_text().split("\n") if line]
    assert all(path.startswith(inside) for path in read), [p for p in read if not p.startswith(inside)]
    for name in owned:
        assert (
            example.secret_text.encode() not in (example.datastore / ref["output_path"] / "results" / name).read_bytes()
        )
    # 4. no process of the run outlives it
    wait_until(
        lambda: not live_processes(f"AZUREML_RUN_ID={ref['run_id']}") and not live_processes(example.marker),
        timeout=20,
        what="the run's processes to end",
    )
    # 5. validation passes exactly when every file has its results or is within the allowance
    expected = _expected_failed(example, registered)
    failed = {failure["relative_path"] for failure in _all_failures(example, ref)}
    assert failed == expected, (sorted(failed ^ expected), report["problems"])
    assert (
        report["counts"]["succeeded"] + report["counts"]["failed"] == len(registered) == report["counts"]["input_files"]
    )
    outside_ran = any(behaviour_of(example.folder, example.tree, r).behaviour == "outside" for r in registered)
    assert bool(strays) == outside_ran, strays  # only the script that writes into results/ itself leaves strays
    within = allowed == -1 or len(expected) <= allowed
    assert report["passed"] is (within and not outside_ran), (report["problems"], sorted(expected), allowed)
    return failed


def _all_failures(example: Example, ref: dict) -> list[dict]:
    text = (example.datastore / ref["output_path"] / "validation-failures.jsonl").read_text()
    return [json.loads(line) for line in text.split("\n") if line]


def run_example(tree: Tree, allowed: int, mini_batch: int, processes: int, tries: int, repair: bool) -> list[str]:
    """One example through the DAG's tasks (and a repair); every invariant checked. Returns what happened, for the
    statistics of the examples (``--hypothesis-show-statistics``)."""
    happened = [f"R: {name}" for name in sorted({f.behaviour for f in tree.files})]
    for what, present in (
        ("a link inside", tree.links_in),
        ("a link out", tree.links_out),
        ("a FIFO or a link to nothing", tree.odd_entries),
        ("a late file", tree.late),
        ("a changed file", tree.changed + tree.touched),
        ("a folder", [f for f in tree.files if len(f.parts) > 1]),
    ):
        if present:
            happened.append(f"tree: {what}")
    example = Example(tree, processes)
    try:
        with mock.patch.object(AzureMLParallelRunHook, "get_conn", lambda _hook: example.backend):
            make_tree(example.folder, tree, example.secret)
            first = f"scheduled__{DATE}"
            if tree.links_out or tree.odd_entries:  # 3. refused before anything is registered, naming each
                with pytest.raises(AirflowFailException) as refused:
                    example.register(first, DATE)
                if tree.links_out:  # named with where they point
                    assert f"is a link to {example.secret}" in str(refused.value) or (
                        f"is a link to {os.path.realpath(example.secret.parent)}" in str(refused.value)
                    )
                assert not (example.datastore / ".azureml-local" / "datasets").exists()
                assert example.trace.read_text() == ""
                remove_bad_entries(example.folder, tree)
            dataset = example.register(first, DATE)
            registered = example.backend.list_dataset_files(dataset)
            reachable = {os.path.realpath(example.folder / f.relative) for f in tree.files}
            assert {os.path.realpath(example.folder / r) for r in registered} == reachable
            change_after_registration(example.folder, tree)
            ref = example.submit(
                first,
                DATE,
                dataset,
                mini_batch_size=mini_batch,
                error_threshold=-1,
                process_count_per_node=processes,
                run_max_try=tries,
            )
            report, _event = example.validate(first, DATE, ref, dataset, allowed)
            failed = _check_run(example, ref, registered, report, allowed)
            happened.append(f"validation {'passed' if report['passed'] else 'failed'}")
            if not (repair and failed):
                return happened
            happened.append("a repair run")
            # 6. the failed files fixed, a repair run of another day reruns exactly them, for the first run's date
            for relative in failed:
                (example.folder / relative).resolve().write_text("ok\n")
            second = f"manual__{REPAIR_DATE}"
            example.trace.write_text("")
            repaired = example.register(second, REPAIR_DATE, rerun_failed_of=first)
            assert sorted(example.backend.list_dataset_files(repaired)) == sorted(failed)
            tree.changed, tree.touched = [], []  # registered anew: the fix is what the repair processes
            for item in list(tree.files):
                if any(
                    os.path.realpath(example.folder / r) == os.path.realpath(example.folder / item.relative)
                    for r in failed
                ):
                    tree.files[tree.files.index(item)] = type(item)(item.parts, "ok", 0)
            ref2 = example.submit(
                second,
                REPAIR_DATE,
                repaired,
                mini_batch_size=mini_batch,
                error_threshold=-1,
                process_count_per_node=processes,
                run_max_try=tries,
            )
            report2, published = example.validate(second, REPAIR_DATE, ref2, repaired, 0)
            assert _check_run(example, ref2, sorted(failed), report2, 0) == set()
            assert published.extra["date"] == DATE and published.partition_keys == {DATE}
            assert published.extra["output_paths"] == [ref["output_path"], ref2["output_path"]]
            return happened
    finally:
        example.close()


@pytest.mark.timeout(120 + 60 * EXAMPLES)  # every example in one test: a bound, not an expectation
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,  # the suite's run: the same examples every time
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if LONG_RUN else [])],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(
    tree=trees(),
    allowed=st.integers(-1, 3),
    mini_batch=st.integers(1, 3),
    processes=st.integers(1, 2),
    tries=st.integers(1, 2),
    repair=st.booleans(),
)
def test_every_registered_file_is_accounted_for_and_nothing_else_is(
    tree: Tree, allowed: int, mini_batch: int, processes: int, tries: int, repair: bool
) -> None:
    for happened in run_example(tree, allowed, mini_batch, processes, tries, repair):
        event(happened)


# -- counterexamples the harness found, kept as plain tests ---------------------------------------------------------


def test_a_hanging_file_named_with_a_record_separator_is_accounted_for_and_repaired() -> None:
    """The first counterexample: a name holding U+001E, a line break to ``str.splitlines`` (the harness's own trace
    reader split on it); a hanging file (its mini-batch retried, R killed at the per-file limit), then repaired."""
    tree = Tree(files=[InputFile(("\x1e0",), "hang", 4000)])
    run_example(tree, allowed=1, mini_batch=2, processes=1, tries=2, repair=True)
