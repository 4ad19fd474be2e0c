"""The local engine reads tables and cuts them into mini-batches by the rules of engine/tables.py (each cites its
source), checked over generated inputs where the rule is about a class of inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azureml_parallel_r.engine.tables import (
    DEFAULT_TABLE_MINI_BATCH_BYTES,
    file_partitions,
    parse_data_size,
    read_table,
    table_batches,
    table_files,
)
from azureml_parallel_r.mltable import partition_values

UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@given(
    number=st.integers(1, 10**6),
    unit=st.sampled_from(sorted(UNITS)),
    cases=st.lists(st.booleans(), min_size=2, max_size=2),
    space=st.booleans(),
)
def test_a_size_in_any_of_the_documented_forms_is_its_bytes(number, unit, cases, space) -> None:
    """SDK: ^\\d+([kKmMgG][bB])*$, units of 1024; YAML: "100 kb" (a space before the unit)."""
    written = "".join(c.upper() if up else c for c, up in zip(unit, cases, strict=False))
    text = f"{number}{' ' if space and unit else ''}{written}"
    assert parse_data_size(text) == number * UNITS[unit]


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5MB", "10 pages", "MB", "10 M", "10TB", "1e3", "10  MB"])
def test_what_is_not_a_size_is_refused_saying_the_forms(text) -> None:
    with pytest.raises(ValueError, match=r"approximate data size, like 1024 \(bytes\), 100 kb, 10MB or 1GB"):
        parse_data_size(text)


def test_the_default_size_is_the_sdks_one_megabyte() -> None:
    assert parse_data_size("1MB") == DEFAULT_TABLE_MINI_BATCH_BYTES


def _table(folder: Path, files: dict[str, str], mltable: str) -> Path:
    for name, text in {**files, "MLTable": mltable}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


READ = "transformations:\n  - read_delimited:\n      delimiter: ','\n"


@settings(max_examples=40, deadline=None)  # each example writes files: no deadline on a loaded machine
@given(rows=st.integers(1, 400), size=st.integers(16, 4096))
def test_size_cut_mini_batches_hold_every_row_once_in_order_and_never_span_files(tmp_path_factory, rows, size) -> None:
    folder = tmp_path_factory.mktemp("t")
    lines = ["id,value"] + [f"{i},{i * 7}" for i in range(rows)]
    _table(folder, {"a.csv": "\n".join(lines), "b.csv": "id,value\n-1,0\n"}, "paths:\n  - pattern: ./*.csv\n" + READ)
    batches = table_batches(str(folder), str(folder / "work"), size=size)
    frames = [pd.read_pickle(batch.table) for batch in batches]
    seen = [int(i) for frame in frames for i in frame["id"]]
    assert seen == [*range(rows), -1]
    assert all(batch.count == len(frame) for batch, frame in zip(batches, frames, strict=True))
    assert {b.label.split(" ")[0] for b in batches[-1:]} == {"b.csv"}  # the second file starts its own mini-batch
    per_row = (folder / "a.csv").stat().st_size / rows
    assert all(len(frame) <= max(1, size // per_row) for frame in frames[:-1])


def test_partition_keys_make_one_mini_batch_per_value_whatever_the_size(tmp_path: Path) -> None:
    folder = _table(
        tmp_path,
        {"x.csv": "Store,Brand,q\n1,a,1\n2,a,2\n1,b,3\n1,a,4\n,a,5\n"},
        "paths:\n  - file: ./x.csv\n" + READ,
    )
    batches = table_batches(str(folder), str(tmp_path / "work"), ("Store", "Brand"), size="1")
    keys = [b.keys for b in batches]
    assert [(k["Store"], k["Brand"]) for k in keys][:3] == [(1.0, "a"), (1.0, "b"), (2.0, "a")]
    assert len(batches) == 4 and pd.isna(keys[3]["Store"])  # a missing key value is a partition too
    assert list(pd.read_pickle(batches[0].table)["q"]) == [1, 4]


def test_microsofts_partitioned_layout_puts_the_keys_back_from_the_folders(tmp_path: Path) -> None:
    """1A: partition_data.py's MLTable (pattern ./**/*.csv, include_path_column, extract_columns_from_partition_format,
    drop_columns); infer_column_types (on by default) makes ISO dates datetimes."""
    from azureml_parallel_r.examples.samples import make_oj_sales_table

    make_oj_sales_table(str(tmp_path), stores=1, weeks=5)
    tables = read_table(str(tmp_path))
    assert len(tables) == 3
    frame = tables[0][1]
    assert list(frame.columns) == ["WeekStarting", "Quantity", "Advert", "Price", "Revenue", "Store", "Brand"]
    assert frame["WeekStarting"].dtype.kind == "M" and set(frame["Store"]) == {"1000"}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ("- file: ./a/x.csv", ["a/x.csv"]),
        ("- folder: ./a", ["a/x.csv", "a/y.csv"]),
        ("- pattern: ./*.csv", ["top.csv"]),
        ("- pattern: ./**/*.csv", ["a/x.csv", "a/y.csv", "top.csv"]),
        ("- pattern: ./a/?.csv", ["a/x.csv", "a/y.csv"]),
    ],
)
def test_mltable_paths_name_the_files_as_the_mltable_reference_says(tmp_path: Path, paths, expected) -> None:
    import yaml

    _table(tmp_path, {"a/x.csv": "v\n1", "a/y.csv": "v\n2", "top.csv": "v\n3"}, "")
    found = table_files(str(tmp_path), yaml.safe_load(paths))
    assert [str(Path(p).relative_to(tmp_path)) for p in found] == expected


@given(
    values=st.lists(
        st.text(st.characters(exclude_characters="/{}\x00"), min_size=1, max_size=8), min_size=2, max_size=2
    )
)
def test_a_partition_format_reads_back_the_values_it_was_written_with(values) -> None:
    user, genre = values
    assert partition_values(f"{user}/spring/{genre}.wav", "{user}/{season}/{genre}.wav") in (
        {"user": user, "season": "spring", "genre": genre},
        None if "." in genre else {},  # a dot in the last field is ambiguous with the extension's
    )


def test_files_of_one_partition_share_a_mini_batch(tmp_path: Path) -> None:
    files = [str(tmp_path / p) for p in ("u1/s/rock.wav", "u2/s/rock.wav", "u1/t/rock.wav", "u1/s/jazz.wav")]
    batches = file_partitions(str(tmp_path), files, ("user", "genres"), "{user}/{season}/{genres}.wav")
    assert [(b.keys, len(b.items)) for b in batches] == [
        ({"user": "u1", "genres": "jazz"}, 1),
        ({"user": "u1", "genres": "rock"}, 2),
        ({"user": "u2", "genres": "rock"}, 1),
    ]


def test_partitions_from_paths_are_the_partitions_the_data_gives(tmp_path: Path) -> None:
    """For Microsoft's partitioned layout, the folder names alone give every partition, exactly as reading the data
    does (what registration on Azure records without downloading the table)."""
    from azureml_parallel_r.engine.tables import partition_folders
    from azureml_parallel_r.examples.samples import make_oj_sales_table
    from azureml_parallel_r.mltable import check_mltable, partitions_from_paths

    make_oj_sales_table(str(tmp_path), stores=3, weeks=4)
    every = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    mltable = check_mltable((tmp_path / "MLTable").read_text())
    from_paths = partitions_from_paths(mltable, every, ["Store", "Brand"])
    assert from_paths == partition_folders(str(tmp_path), ["Store", "Brand"])
    assert len(from_paths) == 9 and from_paths[0] == "Store=1000/Brand=dominicks"
    assert partitions_from_paths(mltable, every, ["Quantity"]) is None  # a column of the data: only reading tells
    assert partitions_from_paths(check_mltable(IRIS), ["iris.csv"], ["Store"]) is None


IRIS = "paths:\n  - file: ./iris.csv\ntransformations:\n  - read_delimited: {}\n"


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ("- file: ../secret.csv", "which is not a file of its folder"),
        ("- file: ./a/../../secret.csv", "which is not a file of its folder"),
        ("- pattern: ../*.csv", "names no file"),
        ("- folder: ../", "names no file"),
        ("- file: https://example.com/x.csv", "is a URL"),
    ],
)
def test_an_mltable_never_reads_outside_its_folder(tmp_path: Path, paths: str, message: str) -> None:
    """Whatever its paths say, a table is the files of its folder: one beside it is never read."""
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    folder = _table(tmp_path / "table", {"a/x.csv": "v\n1"}, f"paths:\n  {paths}\n" + READ)
    with pytest.raises(ValueError, match=message):
        read_table(str(folder))


def test_a_link_out_of_the_table_folder_is_refused(tmp_path: Path) -> None:
    from azureml_parallel_r.inputs import InputFolderError

    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    folder = _table(tmp_path / "table", {"x.csv": "v\n1"}, "paths:\n  - pattern: ./*.csv\n" + READ)
    (folder / "linked.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(InputFolderError, match=r"linked\.csv"):
        read_table(str(folder))
