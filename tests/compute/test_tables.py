"""A table's mini-batch reaches R as the data.frame it is, and its outputs get a folder of their own: the rules of
compute/tables.py, checked over generated inputs (hypothesis) against real R."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azureml_parallel_r.compute.r_session import RSession
from azureml_parallel_r.compute.tables import EMPTY, MISSING, partition_path, r_classes, write_table

pytestmark = pytest.mark.integration

# R writes back what it read: each column's class, and its values as text (numbers with 17 digits, NA as null)
ECHO_R = r"""
process_partition <- function(data, keys, output_dir, args) {
  as_text <- function(column) {
    if (inherits(column, "Date")) return(ifelse(is.na(column), NA, format(column, "%Y-%m-%d")))
    if (inherits(column, "POSIXct")) {
      return(ifelse(is.na(column), NA, format(column, "%Y-%m-%dT%H:%M:%OS6", tz = "UTC")))
    }
    if (is.double(column)) return(ifelse(is.na(column), NA, sprintf("%.17g", column)))
    if (is.logical(column)) return(ifelse(is.na(column), NA, ifelse(column, "TRUE", "FALSE")))
    as.character(column)
  }
  echo <- list(names = I(names(data)), classes = I(unname(vapply(data, function(c) class(c)[[1L]], ""))),
               rows = nrow(data), columns = unname(lapply(data, function(c) as.list(as_text(c)))), keys = keys)
  writeLines(jsonlite::toJSON(echo, auto_unbox = TRUE, null = "null", na = "null", digits = NA),
             file.path(output_dir, "echo.json"), useBytes = TRUE)
  NULL
}
"""


@pytest.fixture(scope="module")
def echo_session(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("echo")
    script = folder / "echo.r"
    script.write_text(ECHO_R, encoding="utf-8")
    session = RSession(str(script), str(folder / "r.txt"), file_timeout=60)
    session.start()
    yield session, folder
    session.close()


def _through_r(echo_session, frame: pd.DataFrame, keys: dict | None = None) -> dict:
    session, folder = echo_session
    n = len(list(folder.glob("in-*.csv")))
    csv_path, out = folder / f"in-{n}.csv", folder / f"out-{n}"
    table = write_table(frame, str(csv_path))
    table["keys"] = keys or {}
    outcome = session.process(str(csv_path), str(out), [], table=table)
    assert outcome.ok, outcome.error
    return json.loads((out / "echo.json").read_text(encoding="utf-8"))


texts = st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\x1f")))
floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
ints = st.one_of(st.integers(-(2**31) + 1, 2**31 - 1))
dates = st.one_of(st.none(), st.dates(min_value=pd.Timestamp("1900-01-01").date()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(texts, floats, ints, st.booleans(), dates), min_size=1, max_size=8),
    names=st.lists(
        st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t), min_size=5, max_size=5, unique=True
    ),
)
def test_every_value_of_every_column_reaches_r_as_it_is(echo_session, rows, names) -> None:
    """Any text (an empty string, "NA", quotes, commas, line breaks, any script), any finite number, a missing value
    in any column, any column name: R reads back the same values, and each column as its R class."""
    frame = pd.DataFrame(rows, columns=names)
    frame = frame.astype({names[1]: "float64", names[2]: "int64", names[3]: "bool"})  # as read_csv types them
    frame[names[4]] = pd.to_datetime(frame[names[4]])
    echo = _through_r(echo_session, frame)
    assert echo["names"] == names and echo["rows"] == len(rows)
    assert echo["classes"] == r_classes(frame) == ["character", "numeric", "integer", "logical", "Date"]
    text_column, float_column, int_column, bool_column, date_column = echo["columns"]
    assert text_column == [None if v is None else v for v, *_ in rows]
    assert [None if v is None else float(v) for v in float_column] == [None if r[1] is None else r[1] for r in rows]
    assert [int(v) for v in int_column] == [r[2] for r in rows]
    assert bool_column == ["TRUE" if r[3] else "FALSE" for r in rows]
    assert date_column == [None if r[4] is None else r[4].isoformat() for r in rows]


def test_a_mini_batch_without_rows_reaches_r_as_an_empty_data_frame_with_its_columns(echo_session) -> None:
    frame = pd.DataFrame({"q": pd.Series([], dtype="int64"), "when": pd.Series([], dtype="datetime64[ns]")})
    echo = _through_r(echo_session, frame)
    assert echo["rows"] == 0 and echo["names"] == ["q", "when"] and echo["classes"] == ["integer", "Date"]


def test_columns_sharing_a_name_reach_r_each_as_it_is(echo_session) -> None:
    frame = pd.DataFrame([[1, "a", True]], columns=["x", "x", "x"])
    echo = _through_r(echo_session, frame)
    assert echo["names"] == ["x", "x", "x"] and echo["classes"] == ["integer", "character", "logical"]
    assert echo["columns"] == [["1"], ["a"], ["TRUE"]]


def test_times_reach_r_in_utc_to_the_microsecond(echo_session) -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2020-01-01 10:00:01.123456", None]).tz_localize("Europe/Paris")})
    echo = _through_r(echo_session, frame)
    assert echo["classes"] == ["POSIXct"]
    assert echo["columns"][0] == ["2020-01-01T09:00:01.123456", None]


def test_keys_reach_r_as_a_named_list(echo_session) -> None:
    echo = _through_r(echo_session, pd.DataFrame({"x": [1]}), {"Store": 1000, "Brand": "dominicks", "Gone": None})
    assert echo["keys"] == {"Store": 1000, "Brand": "dominicks", "Gone": None}
    assert _through_r(echo_session, pd.DataFrame({"x": [1]}), {})["keys"] == {}  # an empty named list


key_values = st.one_of(st.none(), st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=300)
@given(st.lists(st.dictionaries(st.text(min_size=1), key_values, min_size=1, max_size=3), min_size=2, max_size=2))
def test_every_partition_gets_one_safe_folder_of_its_own(pairs) -> None:
    """Whatever the keys' values (a slash, "..", "", a missing value, any text): each path segment is a plain folder
    name, and two partitions with different values never share a folder."""
    first, second = pairs
    for keys in (first, second):
        path = partition_path(keys)
        segments = path.split("/")
        assert len(segments) == len(keys)
        for segment in segments:
            assert segment not in ("", ".", "..") and "\x00" not in segment and os.sep not in segment
            assert len(segment.encode()) < 4096
    texts_of = [
        {
            str(k): (None if v is None else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            for k, v in keys.items()
        }
        for keys in (first, second)
    ]
    if list(texts_of[0].items()) != list(texts_of[1].items()):
        assert partition_path(first) != partition_path(second)


def test_missing_and_empty_values_have_names_a_real_value_cannot_take() -> None:
    assert partition_path({"Store": None}) == f"Store={MISSING}"
    assert partition_path({"Store": ""}) == f"Store={EMPTY}"
    assert partition_path({"Store": MISSING}) != partition_path({"Store": None})
    assert partition_path({"Store": "a/b"}) == "Store=a%2Fb"
    assert partition_path({"Store": 1000.0}) == partition_path({"Store": 1000}) == "Store=1000"


def test_a_mini_batch_without_keys_is_named_by_its_data() -> None:
    a, b = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [1, 3]})
    assert partition_path(None, a) == partition_path({}, a.copy()) != partition_path(None, b)
    assert partition_path(None, a).startswith("rows-")


def test_whole_numbers_too_big_for_r_integers_stay_exact_numbers(echo_session) -> None:
    frame = pd.DataFrame({"small": [1, 2], "big": [1, 2**40]})
    assert r_classes(frame) == ["integer", "numeric"]
    echo = _through_r(echo_session, frame)
    assert echo["classes"] == ["integer", "numeric"] and echo["columns"][1] == ["1", str(2**40)]
