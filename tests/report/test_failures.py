"""The failed files a page at a time and as downloads: any name and any error text survive CSV and JSON Lines."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from azureml_parallel_r.report.failures import CSV_COLUMNS, failure_page, failures_csv, failures_jsonl, slowest_csv

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
failure = st.fixed_dictionaries(
    {
        "relative_path": texts.filter(bool),
        "kind": st.sampled_from(["r_error", "timeout", "crash"]),
        "error": texts,
        "call": st.none() | texts,
        "attempt": st.none() | st.integers(1, 9),
        "warnings": st.lists(texts, max_size=2),
        "stderr_tail": texts,
        "log": st.none() | texts,
    }
)


@given(st.lists(failure, max_size=30))
def test_every_failed_file_round_trips_through_both_downloads(failures: list[dict]) -> None:
    rows = list(csv.DictReader(io.StringIO("".join(failures_csv(failures)), newline="")))
    assert [row["relative_path"] for row in rows] == [f["relative_path"] for f in failures]
    assert [row["error"] for row in rows] == [f["error"] for f in failures]
    assert [row["kind"] for row in rows] == [f["kind"] for f in failures]
    assert all(set(row) == set(CSV_COLUMNS) for row in rows)
    lines = "".join(failures_jsonl(failures)).split("\n")[:-1]  # JSON Lines: lines end at "\\n" only
    assert [json.loads(line) for line in lines] == failures


def test_large_lists_stream_in_chunks() -> None:
    many = [{"relative_path": f"d/{i:06d}.png", "kind": "r_error", "error": "x" * 100} for i in range(5000)]
    assert len(list(failures_csv(many))) > 1 and len(list(failures_jsonl(many))) == 5
    assert "".join(failures_csv(many)).count("\n") == 5001


def test_a_filter_with_no_match_is_an_empty_page_of_a_nonempty_list() -> None:
    page = failure_page([{"relative_path": "a.png", "kind": "r_error", "error": "bad"}], text="nothing like it")
    assert (page["total"], page["matching"], page["items"]) == (1, 0, [])


def test_the_slowest_files_download_is_validations_list() -> None:
    validation = {"durations": {"slowest": [{"relative_path": "b/c.png", "seconds": 2.5}]}}
    assert "".join(slowest_csv(validation)).splitlines() == ["relative_path,seconds", "b/c.png,2.5"]
    assert "".join(slowest_csv(None)).splitlines() == ["relative_path,seconds"]


@given(st.lists(failure, max_size=20))
def test_what_validation_writes_the_report_reads_back_whatever_the_names_hold(failures: list[dict]) -> None:
    """validation-failures.jsonl, written by validation and read by the report through the engine: one failed file
    per line even when a name or an error holds U+2028 or U+0085 (line breaks to str.splitlines)."""
    from types import SimpleNamespace

    from azureml_parallel_r.output_checks import FAILURES_NAME
    from azureml_parallel_r.output_checks import failures_jsonl as written_by_validation
    from azureml_parallel_r.report.failures import FailureLists
    from azureml_parallel_r.report.sources import DagRunRecords

    text = written_by_validation(failures).decode("utf-8")
    engine = SimpleNamespace(read_output_text=lambda _path, name: text if name == FAILURES_NAME else None)
    record = {"conn_id": "c", "output_path": "out/run-1"}
    validation = {"counts": {"failed": len(failures)}, "output_path": "out/run-1", "failures_file": FAILURES_NAME}
    found = DagRunRecords("d", "r", "success", {}, record=record, validation={"passed": True, **validation})
    assert FailureLists().get(found, lambda _conn_id: engine) == failures


def test_a_name_that_is_not_utf8_is_written_and_read_back() -> None:
    """A file name Python read as surrogate escapes (bytes that are not UTF-8) is a failed file like any other."""
    from azureml_parallel_r.output_checks import failures_jsonl as written_by_validation

    failures = [{"relative_path": "camera/\udcff\udcfe.png", "kind": "r_error", "error": "bad\u2028line"}]
    text = written_by_validation(failures).decode("utf-8")
    assert text.count("\n") == 1 and [json.loads(line) for line in text.split("\n")[:-1]] == failures
