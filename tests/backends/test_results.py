"""The one results reader, over a local folder (the local engine's datastore)."""

from __future__ import annotations

import json
from pathlib import Path

from azureml_parallel_r.backends.results import FolderStore, collect_results
from azureml_parallel_r.models import RunState

STATE = RunState("run-1", "Finished")


def _output(tmp_path: Path) -> Path:
    output = tmp_path / "out"
    (output / "results" / "a.png").mkdir(parents=True)
    (output / "results" / "a.png" / "stats.json").write_text("{}")
    (output / "failures" / "sub").mkdir(parents=True)
    (output / "failures" / "sub" / "b.png.json").write_text(json.dumps({"kind": "r_error", "error": "x"}))
    (output / "parallel_run_step.txt").write_text('{"relative_path": "a.png"}\n\n{"relative_path": "c.png"}\n')
    return output


def test_a_folder_store_lists_and_reads_relative_paths(tmp_path: Path) -> None:
    store = FolderStore(str(_output(tmp_path)))
    assert sorted(store.names("results")) == ["a.png/stats.json"]
    assert list(store.names("no-such-folder")) == []
    assert store.read_text("results/a.png/stats.json") == "{}" and store.read_text("missing.txt") is None


def test_rows_failures_outputs_and_logs_are_read(tmp_path: Path) -> None:
    output = _output(tmp_path)
    results = collect_results(
        STATE,
        FolderStore(str(tmp_path)),
        output.name,
        "parallel_run_step.txt",
        lambda: {"job_result.txt": "Finished"},
        {"name": "in", "version": 2},
    )
    assert [json.loads(row)["relative_path"] for row in results.rows] == ["a.png", "c.png"]
    assert results.failures == {"sub/b.png": {"kind": "r_error", "error": "x"}}
    assert results.output_files == ["results/a.png/stats.json"]
    assert results.logs == {"job_result.txt": "Finished"} and results.dataset == {"name": "in", "version": 2}


def test_a_failure_summary_reads_the_failure_records_and_logs_and_lists_no_results(tmp_path: Path) -> None:
    output = _output(tmp_path)
    store = FolderStore(str(tmp_path))
    prefixes: list[str] = []
    listing = store.names
    store.names = lambda prefix: prefixes.append(prefix) or listing(prefix)  # type: ignore[method-assign]
    results = collect_results(
        STATE, store, output.name, "parallel_run_step.txt", lambda: {"job_error.txt": "x"}, failures_only=True
    )
    assert results.failures == {"sub/b.png": {"kind": "r_error", "error": "x"}} and results.logs == {
        "job_error.txt": "x"
    }
    assert results.rows == [] and results.output_files == []
    assert prefixes == [f"{output.name}/failures"]  # results/ is never listed


def test_each_part_fails_alone_and_says_why(tmp_path: Path) -> None:
    output = _output(tmp_path)
    (output / "failures" / "broken.json").write_text("{not json")

    def logs_fail() -> dict[str, str]:
        raise OSError("the job's logs are gone")

    results = collect_results(STATE, FolderStore(str(tmp_path)), output.name, "parallel_run_step.txt", logs_fail)
    assert len(results.rows) == 2 and list(results.failures) == ["sub/b.png"]
    problems = results.logs["fetch_problems.txt"]
    assert "the job logs: OSError: the job's logs are gone" in problems
    assert "the failure record failures/broken.json is not JSON" in problems


def test_a_run_that_records_no_output_folder_is_said(tmp_path: Path) -> None:
    results = collect_results(STATE, FolderStore(str(tmp_path)), "", "parallel_run_step.txt", dict)
    assert results.rows == [] and "records no output folder" in results.logs["fetch_problems.txt"]


def test_rows_are_read_as_iterated_in_chunks_and_split_on_newlines_only(tmp_path: Path, monkeypatch) -> None:
    """A rows file is never held whole: read in chunks (here of 7 characters), rows split on \\n alone (a row's JSON may
    hold U+2028), a row without its final newline kept; each iteration reads the file again."""
    from azureml_parallel_r.backends import results as results_module

    monkeypatch.setattr(results_module, "CHUNK_BYTES", 7)
    output = tmp_path / "out"
    output.mkdir()
    rows = ['{"relative_path": "a.png", "value": "line\u2028break"}', '{"relative_path": "b.png"}']
    (output / "rows.txt").write_text(rows[0] + "\r\n\n" + rows[1], encoding="utf-8")
    results = collect_results(STATE, FolderStore(str(tmp_path)), "out", "rows.txt", dict)
    assert list(results.rows) == rows and list(results.rows) == rows  # read again on each pass
    (output / "rows.txt").unlink()
    assert list(results.rows) == []
