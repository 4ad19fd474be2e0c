"""The plain values of a run: the registered files of a dataset version, the one record every engine keeps."""

from __future__ import annotations

from azureml_parallel_r.models import RegisteredFiles


def test_the_record_is_sorted_and_read_back_whatever_order_it_was_written_in() -> None:
    record = RegisteredFiles.record("in", [("b", 2, "e2"), ("a", 1, "e1")])
    assert record == {"path": "in", "files": ["a", "b"], "sizes": [1, 2], "stamps": ["e1", "e2"]}
    shuffled = {**record, "files": ["b", "a"], "sizes": [2, 1], "stamps": ["e2", "e1"]}
    assert RegisteredFiles.from_record(shuffled).files == ["a", "b"]
    assert RegisteredFiles.from_record(shuffled).changed([("a", 1, "e1"), ("b", 2, "e2")]) == {}


def test_changed_names_a_new_size_or_stamp_and_ignores_files_not_registered_or_gone() -> None:
    registered = RegisteredFiles.from_record(
        RegisteredFiles.record("in", [("a", 1, "e1"), ("b", 2, "e2"), ("gone", 3, "e3")])
    )
    changed = registered.changed([("a", 5, "e1"), ("b", 2, "e9"), ("late", 1, "x")])
    assert changed == {
        "a": "its size changed from 1 to 5 bytes after it was registered, so the run may have read other content "
        "than was registered",
        "b": "it was modified after it was registered (same size), so the run may have read other content than was "
        "registered",
    }


def test_a_record_from_before_sizes_were_kept_lists_its_files_and_tells_no_change() -> None:
    old = RegisteredFiles.from_record({"files": ["b", "a"]})
    assert old.files == ["a", "b"] and old.changed([("a", 99, "x")]) == {}
