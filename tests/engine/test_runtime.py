"""The local engine reproduces the ParallelRunStep runtime rules (tiny Python entry scripts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.engine.runtime import ParallelRunJob
from tests.engine.conftest import read_events


def _run(spec) -> tuple[str, dict]:
    final = ParallelRunJob(spec, progress_interval=0.2).run()
    state = json.loads(Path(spec.logs_dir, "status.json").read_text())
    return final, state


def _rows(spec) -> list[str]:
    return Path(spec.output_dir, spec.settings.append_row_file_name).read_text().splitlines()


def test_every_file_in_mini_batches_with_init_once_per_process(make_spec, tmp_path: Path) -> None:
    spec = make_spec({f"f{i:02d}": "ok" for i in range(23)}, mini_batch_size=5, process_count_per_node=2)
    final, state = _run(spec)
    assert final == status.FINISHED == state["status"]
    assert sorted(_rows(spec)) == [f"f{i:02d}" for i in range(23)]
    events = read_events(tmp_path)
    runs = [e for e in events if e["event"] == "run"]
    assert sorted(len(e["files"]) for e in runs) == [3, 5, 5, 5, 5]
    inits = [e for e in events if e["event"] == "init"]
    assert len(inits) == 2 and len({e["pid"] for e in inits}) == 2
    assert sum(e["event"] == "shutdown" for e in events) == 2
    assert state["counts"]["succeeded_files"] == 23 and state["counts"]["total_mini_batches"] == 5


def test_node_count_multiplies_worker_processes(make_spec, tmp_path: Path) -> None:
    spec = make_spec({f"f{i}": "ok" for i in range(8)}, mini_batch_size=1, node_count=2, process_count_per_node=2)
    assert _run(spec)[0] == status.FINISHED
    assert len([e for e in read_events(tmp_path) if e["event"] == "init"]) == 4
    # node ids as Azure names the log folders: logs/user/stdout/<node_id>/ ("0", Troubleshooting the ParallelRunStep)
    assert sorted(p.name for p in Path(spec.logs_dir, "user", "stdout").iterdir()) == ["0", "1"]


def test_failed_mini_batch_is_retried_and_only_its_last_rows_are_kept(make_spec) -> None:
    spec = make_spec({"a": "ok", "b": "flaky:3", "c": "ok"}, mini_batch_size=3, run_max_try=3)
    final, state = _run(spec)
    assert final == status.FINISHED
    assert sorted(_rows(spec)) == ["a", "b", "c"]
    assert state["counts"]["failed_attempts"] == 2 and state["counts"]["failed_mini_batches"] == 0
    tries = [json.loads(line) for line in Path(spec.logs_dir, "sys", "mini_batches.jsonl").read_text().splitlines()]
    assert [(t["try"], t["outcome"]) for t in tries] == [(1, "error"), (2, "error"), (3, "ok")]
    assert "flaky failure 1" in tries[0]["error"]


def test_mini_batch_that_keeps_failing_counts_its_files_failed(make_spec) -> None:
    spec = make_spec({"a": "ok", "b": "raise", "c": "ok", "d": "ok"}, mini_batch_size=2, run_max_try=2)
    final, state = _run(spec)
    assert final == status.FINISHED, "error_threshold -1 ignores failures"
    assert sorted(_rows(spec)) == ["c", "d"]
    assert state["counts"]["failed_files"] == 2 and state["counts"]["failed_mini_batches"] == 1


def test_fewer_rows_than_files_fails_the_mini_batch_and_counts_the_missing_items(make_spec) -> None:
    spec = make_spec({"a": "ok", "b": "skip", "c": "ok"}, mini_batch_size=3, run_max_try=2)
    final, state = _run(spec)
    assert final == status.FINISHED
    assert sorted(_rows(spec)) == ["a", "c"]
    assert state["counts"]["failed_files"] == 1 and state["counts"]["failed_attempts"] == 2


def test_run_invocation_timeout_kills_the_process_and_a_new_one_takes_over(make_spec, tmp_path: Path) -> None:
    spec = make_spec({"a": "sleep", "b": "ok"}, mini_batch_size=1, run_invocation_timeout=1, run_max_try=2)
    final, state = _run(spec)
    assert final == status.FINISHED
    assert _rows(spec) == ["b"]
    assert state["counts"]["failed_files"] == 1
    tries = [json.loads(line) for line in Path(spec.logs_dir, "sys", "mini_batches.jsonl").read_text().splitlines()]
    assert [t["outcome"] for t in tries if t["mini_batch"] == 0] == ["timeout", "timeout"]
    assert "run_invocation_timeout=1s" in tries[0]["error"]
    assert len([e for e in read_events(tmp_path) if e["event"] == "init"]) >= 2


def test_error_threshold_exceeded_fails_the_job(make_spec) -> None:
    spec = make_spec({"a": "raise", "b": "ok", "c": "raise"}, mini_batch_size=1, run_max_try=1, error_threshold=1)
    final, state = _run(spec)
    assert final == status.FAILED
    assert "2 files failed, more than error_threshold=1" in state["message"]
    assert "error_threshold=1" in Path(spec.logs_dir, "job_error.txt").read_text()
    assert "run raised for" in Path(spec.logs_dir, "job_error.txt").read_text()


def test_error_threshold_not_exceeded_finishes(make_spec) -> None:
    spec = make_spec({"a": "raise", "b": "ok"}, mini_batch_size=1, run_max_try=1, error_threshold=1)
    assert _run(spec)[0] == status.FINISHED


def test_allowed_failed_count_exceeded_fails_the_job(make_spec) -> None:
    spec = make_spec({"a": "raise", "b": "ok", "c": "raise"}, mini_batch_size=1, run_max_try=1, allowed_failed_count=1)
    final, state = _run(spec)
    assert final == status.FAILED and "more than allowed_failed_count=1" in state["message"]


def test_allowed_failed_percent_exceeded_fails_the_job(make_spec) -> None:
    files = {"a": "raise", "b": "ok", "c": "ok", "d": "ok"}
    spec = make_spec(files, mini_batch_size=1, run_max_try=1, allowed_failed_percent=20)
    final, state = _run(spec)
    assert final == status.FAILED and "25.0% of mini-batches failed" in state["message"]
    assert _run(make_spec(files, mini_batch_size=1, run_max_try=1, allowed_failed_percent=25))[0] == status.FINISHED


def test_init_that_keeps_failing_fails_the_job_after_3_tries_per_process_with_its_traceback(make_spec) -> None:
    """The runtime retries init() and a node stops "after 3 * process_count_per_node failures" ("What happens if init
    function in entry script fails?", https://learn.microsoft.com/azure/machine-learning/v1/how-to-debug-parallel-run-step);
    each failed process leaves its processNNN logs ("Why do I have many processNNN files?")."""
    # four mini-batches, so that two slots start processes at once
    files = {name: "ok" for name in "abcd"}
    spec = make_spec(files, mini_batch_size=1, process_count_per_node=2, environment_variables={"FAIL_INIT": "no R"})
    final, state = _run(spec)
    assert final == status.FAILED
    assert "init() failed in 0/process" in state["message"]
    assert "RuntimeError: init exploded: no R" in state["message"]
    assert "after 6 init() failures, 3 * process_count_per_node" in state["message"]
    stdout = sorted(p.name for p in Path(spec.logs_dir, "user", "stdout", "0").iterdir())
    assert stdout == [f"process{n:03d}.stdout.txt" for n in range(6)]


def test_append_row_file_name_and_one_line_per_element(make_spec) -> None:
    spec = make_spec({"a": "newline", "b": "ok"}, append_row_file_name="rows.txt")
    assert _run(spec)[0] == status.FINISHED
    assert sorted(_rows(spec)) == ["a multi line", "b"]
    assert not Path(spec.output_dir, "parallel_run_step.txt").exists()


def test_summary_only_writes_no_row_file(make_spec) -> None:
    spec = make_spec({"a": "ok"}, output_action="summary_only")
    assert _run(spec)[0] == status.FINISHED
    assert not Path(spec.output_dir, "parallel_run_step.txt").exists()


def test_entry_script_output_goes_to_azure_style_logs(make_spec) -> None:
    spec = make_spec({"a": "ok"})
    assert _run(spec)[0] == status.FINISHED
    logs = Path(spec.logs_dir)
    stdout = (logs / "user" / "stdout" / "0" / "process000.stdout.txt").read_text()
    assert "entry script noise on stdout" in stdout
    assert (logs / "job_result.txt").read_text().startswith("Finished: 1/1 files succeeded")
    assert list(logs.glob("job_progress_overview.*.txt"))


@pytest.mark.parametrize("level", ["DEBUG", "WARNING"])
def test_the_runs_logging_level_reaches_the_entry_script_as_azure_passes_it(make_spec, tiny_entry, level) -> None:
    """``--logging_level`` was always INFO: the driver passes the run's level (ParallelRunConfig's logging_level, the
    v2 job's), which an entry script reads with parse_known_args."""
    (tiny_entry / "level.py").write_text(
        "import argparse\n"
        "def run(mini_batch):\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--logging_level')\n"
        "    return [parser.parse_known_args()[0].logging_level for _ in mini_batch]\n"
    )
    spec = make_spec({"a": "ok"}, entry_script="level.py", logging_level=level)
    assert _run(spec)[0] == status.FINISHED
    assert _rows(spec) == [level]


@pytest.mark.parametrize("record", ["job_result.txt", "job_error.txt"])
def test_a_run_whose_own_records_cannot_be_written_ends_failed_saying_why(make_spec, record: str) -> None:
    """Every file failing alone on a full output disk, then "cannot write job_result.txt", and the run ended Finished
    with exit 0. Its records are part of a run: one that cannot be written fails it, with the cause in its status
    (what the sensor reports). Here the record's path is a folder, which no write can replace."""
    spec = make_spec(
        {"a": "ok", "b": "raise" if record == "job_error.txt" else "ok"},
        run_max_try=1,
        error_threshold=0 if record == "job_error.txt" else -1,
    )
    Path(spec.logs_dir, record).mkdir(parents=True)
    final, state = _run(spec)
    assert final == state["status"] == status.FAILED
    if record == "job_result.txt":  # a run that would have Finished
        assert state["message"] == f"the local engine cannot write {Path(spec.logs_dir, record)}: Is a directory"
    assert state["ended_at"] is not None


def test_no_process_an_entry_script_started_outlives_the_run(make_spec, tiny_entry) -> None:
    """A child that left its process group and session (``setsid``): the worker's shutdown does not know it, so the
    controller ends every process that carries the run's id when the run ends, as a job's container would."""
    from tests.conftest import live_processes

    (tiny_entry / "spawner.py").write_text(
        "import subprocess\n"
        "def run(mini_batch):\n"
        "    subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "    return [p for p in mini_batch]\n"
    )
    spec = make_spec({"a": "ok", "b": "ok"}, entry_script="spawner.py")
    assert _run(spec)[0] == status.FINISHED
    assert live_processes(f"AZUREML_RUN_ID={spec.run_id}") == []


def test_missing_input_folder_fails_with_its_path(make_spec, tmp_path: Path) -> None:
    spec = make_spec({"a": "ok"})
    spec = type(spec)(**{**spec.__dict__, "input_dir": str(tmp_path / "nope")})
    final, state = _run(spec)
    assert final == status.FAILED and f"input folder not found: {tmp_path / 'nope'}" == state["message"]


def test_empty_input_folder_finishes_with_nothing_to_do(make_spec) -> None:
    spec = make_spec({})
    final, state = _run(spec)
    assert final == status.FINISHED and state["counts"]["total_files"] == 0


def test_entry_script_using_azureml_user_entry_script(make_spec, tiny_entry: Path) -> None:
    (tiny_entry / "uses_entry_script.py").write_text(
        "from azureml_user.parallel_run import EntryScript\n"
        "import os\n"
        "def init():\n"
        "    global es\n"
        "    es = EntryScript()\n"
        "    es.logger.info('hello from %s', os.getpid())\n"
        "def run(mini_batch):\n"
        "    return [f'{es.agent_name}|{es.output_dir}|{os.path.isdir(es.working_dir)}|"
        "{os.path.basename(p)}' for p in mini_batch]\n"
    )
    spec = make_spec({"a": "ok"}, entry_script="uses_entry_script.py")
    assert _run(spec)[0] == status.FINISHED
    assert _rows(spec) == [f"process000|{spec.output_dir}|True|a"]
    log = Path(spec.logs_dir, "user", "entry_script_log", "0", "process000.log.txt").read_text()
    assert "hello from " in log


def test_entry_script_without_run_fails_the_job(make_spec, tiny_entry: Path) -> None:
    (tiny_entry / "no_run.py").write_text("def init():\n    pass\n")
    final, state = _run(make_spec({"a": "ok"}, entry_script="no_run.py"))
    assert final == status.FAILED and "defines no run(mini_batch) function" in state["message"]


@pytest.mark.parametrize("missing", ["source_dir", "entry_script"])
def test_spec_check_names_what_is_missing(make_spec, missing: str) -> None:
    spec = make_spec({"a": "ok"})
    spec = type(spec)(**{**spec.__dict__, missing: "/does/not/exist"})
    with pytest.raises(ValueError, match="not found: /does/not/exist"):
        spec.check()
