"""Per-file results appear atomically under results/<relative path>/; failures are recorded whole."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from azureml_parallel_r.compute.output_layout import (
    InputOutsideRootError,
    OutputLayout,
    relative_input_path,
    write_json_atomic,
)
from azureml_parallel_r.compute.records import FailureRecord


def test_relative_path_under_the_dataset_root() -> None:
    assert relative_input_path("/mnt/in/a/b.png", "/mnt/in") == "a/b.png"
    assert relative_input_path("/mnt/in/a/b.png", "/mnt/in/") == "a/b.png"


@pytest.mark.parametrize("path", ["/elsewhere/b.png", "/mnt/input2/b.png", "/mnt/in/../x.png"])
def test_a_path_outside_the_root_is_refused(path: str) -> None:
    with pytest.raises(InputOutsideRootError, match="is not under the dataset root '/mnt/in'"):
        relative_input_path(path, "/mnt/in")


def _refuse_rename(source: str, target: str) -> None:
    """os.rename as on an output mount that refuses directory renames (blobfuse: another file system)."""
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.fixture
def layout(tmp_path: Path) -> OutputLayout:
    return OutputLayout(str(tmp_path / "out"), "p1", scratch_dir=str(tmp_path / "local"))


def test_commit_copies_each_file_once_where_the_folder_cannot_be_renamed(
    layout: OutputLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blobfuse output mount refuses (or copies) directory renames: the outputs are copied file by file."""
    scratch = Path(layout.new_scratch())
    (scratch / "sub").mkdir()
    (scratch / "a.json").write_text("{}")
    (scratch / "sub" / "b.png").write_bytes(b"x")

    monkeypatch.setattr(os, "rename", _refuse_rename)
    outputs = layout.commit(str(scratch), "cam/img.png")
    assert outputs == ["results/cam/img.png/a.json", "results/cam/img.png/sub/b.png"]
    assert not scratch.exists()
    assert (tmp_path / "out" / "results" / "cam" / "img.png" / "sub" / "b.png").read_bytes() == b"x"


def test_a_refused_rename_is_learned_once_and_later_files_are_copied_without_trying(
    layout: OutputLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an output mount that refuses renames, only the first file tries one: no failed rename per file."""
    tried = []

    def refuse(source, target):
        tried.append(target)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", refuse)
    for name in ("a.png", "b.png", "c.png"):
        scratch = Path(layout.new_scratch())
        (scratch / "out.txt").write_text(name)
        assert layout.commit(str(scratch), name) == [f"results/{name}/out.txt"]
    assert len(tried) == 1
    assert (tmp_path / "out" / "results" / "c.png" / "out.txt").read_text() == "c.png"


def test_a_copied_commit_replaces_an_earlier_attempt(
    layout: OutputLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "rename", _refuse_rename)
    for content in ("first", "second"):
        scratch = Path(layout.new_scratch())
        (scratch / f"{content}.txt").write_text(content)
        layout.commit(str(scratch), "x.png")
    assert sorted(p.name for p in (tmp_path / "out" / "results" / "x.png").iterdir()) == ["second.txt"]


def test_commit_moves_the_whole_scratch_folder_in_one_step_on_one_file_system(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), "p1", scratch_dir=str(tmp_path / "local"))
    scratch = Path(layout.new_scratch())
    (scratch / "sub").mkdir()
    (scratch / "a.json").write_text("{}")
    (scratch / "sub" / "b.png").write_bytes(b"x")
    outputs = layout.commit(str(scratch), "cam/img.png")
    assert outputs == ["results/cam/img.png/a.json", "results/cam/img.png/sub/b.png"]
    assert not scratch.exists()
    assert (tmp_path / "results" / "cam" / "img.png" / "sub" / "b.png").read_bytes() == b"x"


def test_same_basename_in_two_folders_never_collides(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), "p1", scratch_dir=str(tmp_path / "local"))
    for folder in ("a", "b"):
        scratch = Path(layout.new_scratch())
        (scratch / "out.txt").write_text(folder)
        layout.commit(str(scratch), f"{folder}/x.png")
    assert (tmp_path / "results/a/x.png/out.txt").read_text() == "a"
    assert (tmp_path / "results/b/x.png/out.txt").read_text() == "b"


def test_commit_replaces_an_earlier_attempt(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), "p1", scratch_dir=str(tmp_path / "local"))
    for content in ("first", "second"):
        scratch = Path(layout.new_scratch())
        (scratch / f"{content}.txt").write_text(content)
        layout.commit(str(scratch), "x.png")
    assert sorted(p.name for p in (tmp_path / "results" / "x.png").iterdir()) == ["second.txt"]


def test_failure_records_count_attempts_and_clear_on_success(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path), "p1")
    assert layout.record_failure("d/x.png", FailureRecord("d/x.png", "r_error", "boom")) == 1
    assert layout.record_failure("d/x.png", FailureRecord("d/x.png", "r_error", "boom again")) == 2
    record = json.loads((tmp_path / "failures" / "d" / "x.png.json").read_text())
    assert record["error"] == "boom again" and record["attempt"] == 2
    layout.clear_failure("d/x.png")
    assert not (tmp_path / "failures" / "d" / "x.png.json").exists()


def test_remove_scratch_keeps_other_processes_scratch(tmp_path: Path) -> None:
    local = str(tmp_path / "local")
    mine, other = OutputLayout(str(tmp_path), "p1", local), OutputLayout(str(tmp_path), "p2", local)
    mine.new_scratch()
    kept = other.new_scratch()
    mine.remove_scratch()
    assert Path(kept).exists() and not Path(mine.scratch_root).exists()
    other.remove_scratch()
    assert list((tmp_path / "local").iterdir()) == []


def test_a_process_starting_while_another_removes_the_shared_parent_still_gets_its_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that ends removes the node's shared scratch parent when it is empty; one starting at that
    moment (the parent made, then removed before its own folder was made in it) makes it again, not fail its files."""
    local = tmp_path / "local"
    starting, ending = OutputLayout(str(tmp_path), "p1", str(local)), OutputLayout(str(tmp_path), "p2", str(local))
    real_makedirs = os.makedirs
    raced = []

    def makedirs_racing_the_other_process(path: str, mode: int = 0o777, exist_ok: bool = False) -> None:
        if not raced:
            real_makedirs(os.path.dirname(path), exist_ok=True)
            ending.remove_scratch()  # the other process ends: the parent is empty, so it goes
            raced.append(path)
            raise FileNotFoundError(2, "No such file or directory", path)
        real_makedirs(path, mode, exist_ok)

    monkeypatch.setattr(os, "makedirs", makedirs_racing_the_other_process)
    assert Path(starting.scratch_paths(1)[0]).parent.is_dir() and raced


def test_atomic_json_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_json_atomic(str(tmp_path / "deep" / "f.json"), {"ü": 1})
    assert json.loads((tmp_path / "deep" / "f.json").read_text(encoding="utf-8")) == {"ü": 1}
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["f.json"]
