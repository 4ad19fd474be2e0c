"""Detached local runs: start returns at once, status while running, cancel kills the whole tree."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.engine.job import JobSpec, new_run_id
from azureml_parallel_r.engine.runs import STALE_AFTER_VARIABLE, LocalRun, RunNotFound, start_run
from azureml_parallel_r.run_settings import ParallelRunSettings
from tests.conftest import INCLUDE, live_processes
from tests.waiting import wait_until


def _r_spec(tmp_path: Path, inputs: Path, script: Path, **settings) -> JobSpec:
    return JobSpec(
        run_id=new_run_id(),
        input_dir=str(inputs),
        output_dir=str(tmp_path / "output"),
        entry_script="entry/batch_wrapper.py",
        source_dir=str(INCLUDE),
        logs_dir=str(tmp_path / "output" / "logs"),
        entry_args=("--r-script", str(script), "--input-root", str(inputs), "--file-timeout", "0"),
        settings=ParallelRunSettings(
            **{"process_count_per_node": 2, "mini_batch_size": 2, "file_timeout": 0, **settings}
        ),
    )


@pytest.mark.integration
def test_detached_run_reports_progress_and_finishes(tmp_path: Path, behaviour_script: Path, write_inputs) -> None:
    inputs = write_inputs({f"f{i}": "fine" for i in range(6)} | {"bad": "error", "gated": "gate"})
    gate = tmp_path / "gate"
    run = start_run(_r_spec(tmp_path, inputs, behaviour_script, environment_variables={"TEST_GATE": str(gate)}))
    # the run cannot finish before the gate opens: start_run returned without waiting for it
    assert run.status in {status.NOT_STARTED, status.RUNNING}
    wait_until(lambda: run.state().counts.get("succeeded_files", 0) >= 1, timeout=60, what="a file done")
    assert run.status == status.RUNNING
    gate.touch()
    assert run.wait(timeout=120) == status.FINISHED
    state = run.state()
    assert state.counts["succeeded_files"] == 7 and state.counts["failed_files"] == 1
    assert LocalRun.open(run.logs_dir) == run
    rows = Path(tmp_path, "output", "parallel_run_step.txt").read_text().splitlines()
    assert sorted(json.loads(r)["relative_path"] for r in rows) == [f"f{i}" for i in range(6)] + ["gated"]


@pytest.mark.integration
def test_cancel_stops_the_whole_process_tree_and_leaves_no_partial_outputs(
    tmp_path: Path, behaviour_script: Path, write_inputs
) -> None:
    inputs = write_inputs({"done": "fine", "a": "hang", "b": "hang", "c": "fine"})
    run = start_run(_r_spec(tmp_path, inputs, behaviour_script, mini_batch_size=1, run_invocation_timeout=600))
    r_session = "compute/session.R"  # the package's R side
    run_processes = f"AZUREML_RUN_ID={run.run_id}"
    wait_until(
        lambda: len(set(live_processes(r_session)) & set(live_processes(run_processes))) >= 2,
        timeout=60,
        what="two R sessions of the run",
    )
    assert run.cancel() == status.CANCELED  # through a cancel request in the run's folder, no pid involved
    assert run.status == status.CANCELED
    wait_until(lambda: not live_processes(run_processes), timeout=30, what="the run's processes to end")
    output = tmp_path / "output"
    assert not (output / "parallel_run_step.txt").exists()
    assert not (output / ".scratch").exists()
    for hung in ("a", "b"):
        assert not (output / "results" / hung).exists()


def test_a_controller_that_died_reads_as_failed_and_keeps_its_finished_rows(
    tmp_path: Path, make_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of the controller: its heartbeat stops, so the run reads Failed with the reason; the rows of the
    mini-batches it completed are on disk."""
    monkeypatch.setenv(STALE_AFTER_VARIABLE, "3")
    spec = make_spec({"a": "ok", "b": "sleep"}, run_invocation_timeout=300, mini_batch_size=1)
    run = start_run(spec)
    wait_until(
        lambda: run.state().counts.get("completed_mini_batches") == 1,
        timeout=60,
        what="a mini-batch done",
    )
    os.killpg(run.state().pid, signal.SIGKILL)
    wait_until(lambda: run.status == status.FAILED, timeout=60, what="the run to read Failed")
    assert "stopped reporting (no heartbeat for" in run.state().message
    partial = Path(spec.logs_dir, "sys", "parallel_run_step.txt.partial")
    assert partial.read_text().split() == ["a"]


def test_cancel_of_a_finished_run_changes_nothing(tmp_path: Path, make_spec) -> None:
    run = start_run(make_spec({"a": "ok"}))
    assert run.wait(timeout=60) == status.FINISHED
    assert run.cancel() == status.FINISHED


def test_a_logs_folder_holds_one_run(tmp_path: Path, make_spec) -> None:
    spec = make_spec({"a": "ok"})
    start_run(spec).wait(timeout=60)
    with pytest.raises(ValueError, match="already holds a run"):
        start_run(spec)


def test_open_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="no local run in"):
        LocalRun.open(str(tmp_path))


COUNTING_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  cat(basename(input_path), "\n", file = file.path(Sys.getenv("TEST_COUNTS"), "calls.txt"), append = TRUE)
  action <- readLines(input_path, n = 1L, warn = FALSE)
  if (action == "error") stop("corrupt: ", basename(input_path))
  marker <- file.path(Sys.getenv("TEST_COUNTS"), paste0(basename(input_path), ".slow"))
  if (action == "slow-once" && !file.exists(marker)) { file.create(marker); Sys.sleep(30) }
  writeLines(action, file.path(output_dir, "out.txt"))
  action
}
"""


def _calls(tmp_path: Path) -> dict[str, int]:
    from collections import Counter

    return dict(Counter((tmp_path / "calls.txt").read_text().split()))


@pytest.mark.integration
def test_a_retried_mini_batch_reruns_only_the_files_without_results(tmp_path: Path, write_inputs, write_r_script):
    """A corrupt file fails its mini-batch on every try; the good files of that mini-batch run once."""
    inputs = write_inputs({"good1": "fine", "good2": "fine", "zbad": "error"})
    script = write_r_script(COUNTING_R_SCRIPT, "counting.r")
    spec = _r_spec(
        tmp_path,
        inputs,
        script,
        mini_batch_size=3,
        process_count_per_node=1,
        run_max_try=3,
        environment_variables={"TEST_COUNTS": str(tmp_path)},
    )
    run = start_run(spec)
    assert run.wait(timeout=180) == status.FINISHED
    assert _calls(tmp_path) == {"good1": 1, "good2": 1, "zbad": 3}
    rows = Path(spec.output_dir, "parallel_run_step.txt").read_text().splitlines()
    assert sorted(json.loads(r)["relative_path"] for r in rows) == ["good1", "good2"]


@pytest.mark.integration
def test_a_mini_batch_killed_by_its_timeout_keeps_the_files_it_finished(
    tmp_path: Path, write_inputs, write_r_script
) -> None:
    """run_invocation_timeout kills the try; the file it had finished keeps its row and is not redone, the
    slow one is retried, and no scratch folder is left behind."""
    inputs = write_inputs({"a-fast": "fine", "b-slow": "slow-once"})
    script = write_r_script(COUNTING_R_SCRIPT, "counting.r")
    spec = _r_spec(
        tmp_path,
        inputs,
        script,
        mini_batch_size=2,
        process_count_per_node=1,
        run_max_try=3,
        run_invocation_timeout=15,
        environment_variables={"TEST_COUNTS": str(tmp_path)},
    )
    run = start_run(spec)
    assert run.wait(timeout=180) == status.FINISHED
    assert _calls(tmp_path) == {"a-fast": 1, "b-slow": 2}
    rows = Path(spec.output_dir, "parallel_run_step.txt").read_text().splitlines()
    assert sorted(json.loads(r)["relative_path"] for r in rows) == ["a-fast", "b-slow"]
    import tempfile

    # scratch folders and journals live in the run's node temporary folders, removed with the run
    assert not list(Path(tempfile.gettempdir()).glob(f"{spec.run_id}-wd-*"))


SLEEPING_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  Sys.sleep(as.numeric(readLines(input_path, n = 1L)))
  writeLines("done", file.path(output_dir, "out.txt"))
  NULL
}
"""


@pytest.mark.integration
def test_a_last_try_cut_by_an_explicit_invocation_timeout_keeps_the_rows_of_its_finished_files(
    tmp_path: Path, write_inputs, write_r_script
) -> None:
    """No per-file limit, 1 s per file, 13 files and a 5 s run_invocation_timeout, one try: the files finished before
    the deadline keep their rows (not "13/13 failed" with their results orphaned), the others fail with a record."""
    names = [f"f{i:02d}" for i in range(13)]
    inputs = write_inputs(dict.fromkeys(names, "1"))
    spec = _r_spec(
        tmp_path,
        inputs,
        write_r_script(SLEEPING_R_SCRIPT, "sleeping.r"),
        mini_batch_size=13,
        process_count_per_node=1,
        run_max_try=1,
        run_invocation_timeout=5,
    )
    assert start_run(spec).wait(timeout=120) == status.FINISHED
    output = Path(spec.output_dir)
    rows = {json.loads(r)["relative_path"] for r in (output / "parallel_run_step.txt").read_text().splitlines()}
    assert rows and rows == {p.name for p in (output / "results").iterdir()}, "no result without its row"
    failed = {p.stem: json.loads(p.read_text())["kind"] for p in (output / "failures").glob("*.json")}
    assert set(failed) == set(names) - rows and set(failed.values()) == {"invocation_timeout"}
    (attempt,) = [
        json.loads(line) for line in (output / "logs" / "sys" / "mini_batches.jsonl").read_text().splitlines()
    ]
    assert attempt["outcome"] == "ok" and attempt["rows"] == len(rows), "returned in time, not killed"


@pytest.mark.integration
def test_a_full_output_disk_fails_the_run_with_its_cause_in_the_status(
    tmp_path: Path, behaviour_script: Path, write_inputs, small_disk
) -> None:
    """The output disk fills up while the run goes on: the controller cannot write its status or rows. The run ends
    Failed with the file and the cause in its status (written over the old one in place, which needs no new
    space), not "Running" with a dead controller found out a minute later; no temporary file is left beside it."""
    inputs = write_inputs({"a-gated": "gate", "b": "fine", "c": "fine"})
    gate = tmp_path / "gate"
    output = small_disk("output-disk", 1 << 20) / "run"
    spec = dataclasses.replace(
        _r_spec(
            tmp_path,
            inputs,
            behaviour_script,
            mini_batch_size=1,
            process_count_per_node=1,
            environment_variables={"TEST_GATE": str(gate)},
        ),
        output_dir=str(output),
        logs_dir=str(output / "logs"),
    )
    run = start_run(spec)
    wait_until(
        lambda: live_processes("compute/session.R") and live_processes(f"AZUREML_RUN_ID={run.run_id}"),
        timeout=60,
        what="the run's R session",
    )
    with open(output.parent / "filler", "wb") as filler, contextlib.suppress(OSError):  # R works on the gated file
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    gate.touch()
    assert run.wait(timeout=120) == status.FAILED
    message = run.state().message
    assert message.startswith(f"the local engine cannot write {output / 'logs'}/"), message
    assert message.endswith("No space left on device (the disk is full)"), message
    assert list(output.rglob("*.tmp")) == []
    assert "Traceback" not in (output / "logs" / "sys" / "controller.txt").read_text(errors="replace")


@pytest.mark.integration
def test_r_and_the_entry_script_work_in_a_copy_of_the_source_directory(tmp_path: Path, write_inputs) -> None:
    """What a script writes to a relative path lands in the run's own copy of the source directory (Azure ML gives a
    job a snapshot), never in the source directory itself, which concurrent runs share."""
    source = tmp_path / "source"
    shutil.copytree(INCLUDE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "r" / "relative.r").write_text(
        "process_file <- function(input_path, output_dir, args) {\n"
        "  writeLines('written by R', 'relative-output.txt')\n"
        "  getwd()\n"
        "}\n"
    )
    before = sorted(str(p.relative_to(source)) for p in source.rglob("*"))
    inputs = write_inputs({"a": "x", "b": "x"})
    specs = [
        dataclasses.replace(_r_spec(tmp_path / name, inputs, source / "r" / "relative.r"), source_dir=str(source))
        for name in ("one", "two")
    ]
    runs = [start_run(spec) for spec in specs]
    assert [run.wait(timeout=120) for run in runs] == [status.FINISHED, status.FINISHED]
    assert sorted(str(p.relative_to(source)) for p in source.rglob("*")) == before
    folders = set()
    for spec in specs:
        rows = Path(spec.output_dir, "parallel_run_step.txt").read_text().splitlines()
        folders |= {json.loads(row)["value"] for row in rows}
    assert len(folders) == 2 and not any(folder.startswith(str(source)) for folder in folders)
