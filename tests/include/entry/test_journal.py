"""The journal of finished files: a retried mini-batch's finished files are found, each process's lines read once."""

from __future__ import annotations

import json
from pathlib import Path

from journal import Journal


def _row(relative: str) -> str:
    return json.dumps({"relative_path": relative, "outputs": [], "value": relative})


def test_a_process_finds_its_own_rows_without_reading_a_file(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "output"), "host-1", base_dir=str(tmp_path / "tmp"))
    journal.record("a.png", _row("a.png"))
    assert journal.finished(["a.png", "b.png"]) == {"a.png": _row("a.png")}
    journal.close()


def test_another_processs_rows_are_read_once_written_out_and_new_lines_on_the_next_call(tmp_path: Path) -> None:
    base = str(tmp_path / "tmp")
    writer = Journal(str(tmp_path / "output"), "host-1", base_dir=base)
    reader = Journal(str(tmp_path / "output"), "host-2", base_dir=base)
    writer.record("a.png", _row("a.png"))
    assert reader.finished(["a.png"]) == {}, "not written out yet: buffered until flush"
    writer.flush()
    assert reader.finished(["a.png"]) == {"a.png": _row("a.png")}
    writer.record("b.png", _row("b.png"))
    writer.flush()
    assert reader.finished(["a.png", "b.png"]) == {"a.png": _row("a.png"), "b.png": _row("b.png")}
    writer.close()
    reader.close()


def test_a_line_being_written_is_taken_only_once_it_is_whole(tmp_path: Path) -> None:
    base = tmp_path / "tmp"
    reader = Journal(str(tmp_path / "output"), "host-2", base_dir=str(base))
    other = Path(reader.folder) / "host-1.jsonl"
    other.parent.mkdir(parents=True)
    line = _row("a.png")
    other.write_text(line[:10])
    assert reader.finished(["a.png"]) == {}
    other.write_text(line + "\n")
    assert reader.finished(["a.png"]) == {"a.png": line}


def test_runs_with_other_output_folders_have_journals_of_their_own(tmp_path: Path) -> None:
    base = str(tmp_path / "tmp")
    first = Journal(str(tmp_path / "run-1"), "host-1", base_dir=base)
    first.record("a.png", _row("a.png"))
    first.flush()
    second = Journal(str(tmp_path / "run-2"), "host-2", base_dir=base)
    assert second.finished(["a.png"]) == {} and first.folder != second.folder
    first.close()


def test_lines_that_are_not_rows_are_skipped(tmp_path: Path) -> None:
    reader = Journal(str(tmp_path / "output"), "host-2", base_dir=str(tmp_path / "tmp"))
    other = Path(reader.folder) / "host-1.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text("not json\n" + json.dumps({"no": "path"}) + "\n" + _row("a.png") + "\n")
    assert reader.finished(["a.png"]) == {"a.png": _row("a.png")}
