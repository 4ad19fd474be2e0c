"""The journal of finished files: a retried mini-batch finds what an earlier try of it finished, a first try reads no
journal at all, and nothing is kept between mini-batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r.compute.journal import Journal


def _row(relative: str) -> str:
    return json.dumps({"relative_path": relative, "outputs": [], "value": relative})


@pytest.fixture
def journals(tmp_path: Path):
    made: list[Journal] = []

    def make(process: str, run: str = "output") -> Journal:
        made.append(Journal(str(tmp_path / run), process, base_dir=str(tmp_path / "tmp")))
        return made[-1]

    yield make
    for journal in made:
        journal.close()


def test_a_retry_in_another_process_finds_what_the_first_try_finished_once_written_out(journals) -> None:
    first, second = journals("host-1"), journals("host-2")
    assert first.begin(["a.png", "b.png"]) == {}
    first.record("a.png", _row("a.png"))
    assert second.begin(["b.png", "a.png"]) == {}, "not written out yet: buffered until flush"
    first.flush()
    assert second.begin(["b.png", "a.png"]) == {"a.png": _row("a.png")}  # the same files, in any order
    second.record("b.png", _row("b.png"))
    second.flush()
    assert first.begin(["a.png", "b.png"]) == {"a.png": _row("a.png"), "b.png": _row("b.png")}


def test_a_first_try_reads_no_journal_whatever_other_processes_finished(journals) -> None:
    """O(own files): another process's journals of other mini-batches are never read, not even listed."""
    busy, fresh = journals("host-1"), journals("host-2")
    for batch in range(50):
        files = [f"{batch}/{i}.png" for i in range(10)]
        busy.begin(files)
        for name in files:
            busy.record(name, _row(name))
        busy.flush()
    assert fresh.begin(["new/0.png", "new/1.png"]) == {} and fresh.journals_read == 0
    assert fresh.begin(["7/0.png", "7/1.png"]) == {} and fresh.journals_read == 0  # files of another mini-batch
    found = fresh.begin([f"7/{i}.png" for i in range(10)])  # a retry of that mini-batch: its one journal
    assert len(found) == 10 and fresh.journals_read == 1


def test_a_retry_in_the_same_process_finds_its_own_rows(journals) -> None:
    journal = journals("host-1")
    journal.begin(["a.png", "b.png"])
    journal.record("a.png", _row("a.png"))
    journal.flush()
    assert journal.begin(["a.png", "b.png"]) == {"a.png": _row("a.png")}


def test_a_line_being_written_is_taken_only_once_it_is_whole(journals) -> None:
    reader = journals("host-2")
    reader.begin(["a.png"])
    other = Path(reader._batch_folder) / "host-1.jsonl"
    other.parent.mkdir(parents=True)
    line = _row("a.png")
    other.write_text(line[:10])
    assert reader.begin(["a.png"]) == {}
    other.write_text(line + "\n")
    assert reader.begin(["a.png"]) == {"a.png": line}


def test_runs_with_other_output_folders_have_journals_of_their_own(journals) -> None:
    first, second = journals("host-1", "run-1"), journals("host-2", "run-2")
    first.begin(["a.png"])
    first.record("a.png", _row("a.png"))
    first.flush()
    assert second.begin(["a.png"]) == {} and first.folder != second.folder


def test_lines_that_are_not_rows_or_not_of_the_mini_batch_are_skipped(journals) -> None:
    reader = journals("host-2")
    reader.begin(["a.png"])
    other = Path(reader._batch_folder) / "host-1.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text("not json\n" + json.dumps({"no": "path"}) + "\n" + _row("z.png") + "\n" + _row("a.png") + "\n")
    assert reader.begin(["a.png"]) == {"a.png": _row("a.png")}


def test_recording_before_a_mini_batch_began_is_an_error(journals) -> None:
    with pytest.raises(RuntimeError, match=r"before Journal\.begin"):
        journals("host-1").record("a.png", _row("a.png"))
