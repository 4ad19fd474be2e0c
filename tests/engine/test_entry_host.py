"""What run() returns becomes append_row lines."""

from __future__ import annotations

import pytest

from azureml_parallel_r.engine.entry_host import rows_from_result


class FakeFrame:
    """Just enough of a pandas DataFrame (pandas is not a dependency)."""

    columns = ("a", "b")

    def to_csv(self, sep: str, header: bool, index: bool) -> str:
        assert (sep, header, index) == (" ", False, False)
        return "1 x\n2 y\n"


def test_list_elements_become_one_line_each() -> None:
    assert rows_from_result(["a", 1, {"k": 2}, "multi\nline\r\nrow"]) == ["a", "1", "{'k': 2}", "multi line  row"]


def test_tuple_and_empty_results() -> None:
    assert rows_from_result(("a",)) == ["a"]
    assert rows_from_result([]) == []


def test_dataframe_rows_are_space_separated() -> None:
    assert rows_from_result(FakeFrame()) == ["1 x", "2 y"]


@pytest.mark.parametrize("result", [None, "abc", 3])
def test_anything_else_is_an_error(result) -> None:
    with pytest.raises(TypeError, match="run\\(\\) must return a list or a pandas DataFrame"):
        rows_from_result(result)
