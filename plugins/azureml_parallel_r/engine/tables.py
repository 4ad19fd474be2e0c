"""Tabular inputs and partitions on the local engine, cut into mini-batches as Azure ML cuts them.

Sources, cited by each rule below:

- HOWTO: "Use parallel jobs in pipelines", https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline
  (the table of data formats: a file list is an ``mltable`` or ``uri_folder`` input split "by size (number of files)
  or partition"; tabular data is an ``mltable`` input split "by size (estimated physical size) or partition"; an
  ``mltable`` input needs "an MLTable specification file ... with the ``transformations: - read_delimited:``
  section filled out").
- YAML: CLI (v2) parallel job YAML schema, https://learn.microsoft.com/azure/machine-learning/reference-yaml-job-parallel
  (``mini_batch_size``: "for mltable input, it defines the approximate physical size for each mini-batch, e.g.
  ``100 kb``, ``100 mb``"; ``partition_keys``: "the keys used to partition dataset into mini-batches ... the data with
  the same key will be partitioned into the same mini-batch. If both partition_keys and mini_batch_size are
  specified, the partition keys will take effect").
- SDK: azure-ai-ml ``entities/_builders/parallel.py`` (a size matches ``^\\d+([kKmMgG][bB])*$``; ``kb``, ``mb``,
  ``gb`` are 1024, 1024**2, 1024**3 bytes) and azureml-pipeline-steps' ``ParallelRunConfig`` (for a
  TabularDataset, "1024, 1024KB, 10MB, and 1GB"; the default is 1MB).
- MLTABLE: "Working with tables in Azure Machine Learning", https://learn.microsoft.com/azure/machine-learning/how-to-mltable
  (``paths``: ``file``, ``folder``, ``pattern``; ``transformations``: ``read_delimited``, ``read_parquet``,
  ``read_json_lines``, ``extract_columns_from_partition_format``, ``drop_columns``, ``keep_columns``).
- 1A: azureml-examples ``cli/jobs/parallel/1a_oj_sales_prediction``: ``partition_data.py`` writes the partitioned
  MLTable (``Store/Brand/partitioned_data.csv`` with the keys dropped from the rows and put back by
  ``extract_columns_from_partition_format``); ``parallel_train.py``'s ``run(input_data, mini_batch_context)`` reads
  ``mini_batch_context.partition_key_value['Store']``, parses ``--partition_keys``, which ``pipeline.yml`` does not
  pass (the runtime adds it), and returns ``[]`` for every partition.
- V1PART: MachineLearningNotebooks ``parallel-run/Code/`` partition sample: a FileDataset made with
  ``partition_format='{user}/{season}/{genres}.wav'`` and ``partition_keys=['user', 'genres']``; ``run(mini_batch,
  mini_batch_context)`` gets the files of one partition, ``mini_batch_context.partition_key_value`` a dict of the
  keys, ``mini_batch_context.dataset`` the partition's dataset.

What the local engine does (each point a rule of those sources):

- A folder holding an ``MLTable`` file is a tabular input (HOWTO); a folder of CSV files without one is a file input,
  whose mini-batches are lists of paths.
- The table is read with pandas (and pyarrow for Parquet), as its ``transformations`` say (MLTABLE); what this module
  does not read is refused, naming it.
- Without partition keys, each file's rows are cut into slices of about ``mini_batch_size`` bytes of the file
  (YAML: "approximate physical size"; default 1 MB, SDK); a slice never spans two files.
- With partition keys, each distinct value of the keys (columns of the table, or ``{key}`` fields of a file input's
  ``partition_format``) is one mini-batch, whatever ``mini_batch_size`` says (YAML); ``run()`` then gets the
  ``mini_batch_context`` and the entry script the ``--partition_keys`` argument (1A, V1PART).
- ``mini_batch_context.dataset`` is None here: a registered dataset exists only on Azure.
- The mini-batches of a table are written once, at the start, to the run's temporary folder (pickled DataFrames),
  and each worker reads its own: the table is in memory once, in the controller, while it is cut.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from azureml_parallel_r.compute.tables import partition_path
from azureml_parallel_r.inputs import list_input_files
from azureml_parallel_r.mltable import (
    COLUMN_STEPS,
    READERS,
    is_table,
    load_mltable,
    partition_format_regex,
    partition_values,
    selected_paths,
)
from azureml_parallel_r.run_settings import DEFAULT_TABLE_MINI_BATCH_BYTES, parse_data_size

__all__ = ["DEFAULT_TABLE_MINI_BATCH_BYTES", "MiniBatch", "is_table", "parse_data_size", "read_table"]

PATH_COLUMN = "Path"  # include_path_column's column (MLTABLE)


@dataclass
class MiniBatch:
    """One mini-batch of a job, as the controller hands it to a worker.

    :param items: the files of a file input; for a table, one label (its partition, or its file and rows).
    :param count: the items it counts for: its files, or a table's rows (ParallelRunConfig's ``error_threshold``:
        "the number of record failures for TabularDataset and file failures for FileDataset").
    :param table: the pickled DataFrame of a table's mini-batch (None for files).
    :param keys: its partition's key values, with partition keys (the context's ``partition_key_value``).
    """

    items: list[str]
    count: int
    table: str | None = None
    keys: dict[str, Any] | None = None
    label: str = field(default="")

    @property
    def tabular(self) -> bool:
        return self.table is not None


def _pandas() -> Any:
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ValueError(
            "a tabular input (a folder with an MLTable file) needs pandas on this machine, as the runtime hands run() "
            "pandas DataFrames: pip install pandas (and pyarrow for Parquet)"
        ) from exc
    return pandas


def table_files(folder: str, paths: Sequence[Any]) -> list[str]:
    """The files an MLTable's ``paths`` name (``file``, ``folder``, ``pattern``; relative to its folder), sorted,
    the MLTable file itself left out; ``ValueError`` for a path this engine cannot read (a URL) or one that does not
    exist.

    :param folder: the MLTable's folder.
    :param paths: its ``paths`` list.
    """
    # the folder's own files (a link out of it raises): a path naming anything else, "../x" or a link out, is refused
    every = [os.path.relpath(path, folder).replace(os.sep, "/") for path in list_input_files(folder)]
    files = selected_paths(paths, every)
    if not files:
        raise ValueError(f"the MLTable in {folder} names no file (its paths: {paths!r})")
    return [os.path.join(folder, path) for path in files]


def _read_file(pandas: Any, path: str, reader: str, options: dict[str, Any], first: bool) -> Any:
    if reader == "read_parquet":
        frame = pandas.read_parquet(path)
    elif reader == "read_json_lines":
        frame = pandas.read_json(path, lines=True, encoding=_encoding(options.get("encoding")))
    else:
        header = str(options.get("header", "all_files_same_headers"))
        if header not in ("all_files_same_headers", "from_first_file", "no_header", "all_files_different_headers"):
            raise ValueError(f"read_delimited's header {header!r} is not one the MLTable reference lists")
        skip_header = header == "from_first_file" and not first
        empty_as_string = bool(options.get("empty_as_string", False))
        frame = pandas.read_csv(
            path,
            sep=str(options.get("delimiter", ",")),
            encoding=_encoding(options.get("encoding")),
            header=None if header == "no_header" or skip_header else 0,
            keep_default_na=not empty_as_string,
            na_values=[] if empty_as_string else None,
        )
        if header == "no_header":
            frame.columns = [f"Column{i + 1}" for i in range(len(frame.columns))]
    return frame


ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"


def _infer_dates(pandas: Any, frame: Any) -> Any:
    """Text columns whose every value is an ISO date (or date and time) become datetimes, as ``read_delimited``'s
    ``infer_column_types`` (on by default, MLTABLE) makes them; pandas' ``read_csv`` leaves them text."""
    for name in frame.columns:
        column = frame[name]
        if not pandas.api.types.is_string_dtype(column.dtype):
            continue
        present = column.dropna()
        if len(present) and present.map(lambda v: isinstance(v, str)).all() and present.str.match(ISO_DATE).all():
            frame[name] = pandas.to_datetime(column, format="ISO8601")
    return frame


def _encoding(name: Any) -> str:
    text = str(name or "utf8").lower()
    return {"utf8": "utf-8", "utf8bom": "utf-8-sig", "iso88591": "latin-1", "ascii": "ascii"}.get(text, text)


def read_table(folder: str) -> list[tuple[str, Any]]:
    """The table of an MLTable folder, one DataFrame per file (in path order), transformed as its ``transformations``
    say (MLTABLE): the columns a partition format puts back, the path column, columns dropped or kept.

    :param folder: the folder with the MLTable file.
    :raises ValueError: the MLTable asks for what this engine does not read, saying what.
    """
    pandas = _pandas()
    spec = load_mltable(folder)
    files = table_files(folder, spec.get("paths") or [])
    steps = spec.get("transformations") or []
    reader, options = "", {}
    columns: list[tuple[str, Any]] = []
    for step in steps:
        (name, value) = next(iter(step.items())) if isinstance(step, dict) and step else (str(step), None)
        if name in READERS and not reader:
            reader, options = name, dict(value or {})
        elif name in COLUMN_STEPS:
            columns.append((name, value))
        else:
            raise ValueError(
                f"the MLTable in {folder} asks for the transformation {name!r}, which the local engine does not read "
                f"(it reads {', '.join(READERS)} once, then {', '.join(COLUMN_STEPS)})"
            )
    if not reader:
        raise ValueError(
            f"the MLTable in {folder} has no read_delimited, read_parquet or read_json_lines transformation: an "
            "mltable input of a parallel job needs one to be a table (a folder of files is a uri_folder input)"
        )
    raw = [_read_file(pandas, path, reader, options, first=i == 0) for i, path in enumerate(files)]
    relatives = [os.path.relpath(path, folder).replace(os.sep, "/") for path in files]
    # the per-file columns and the column steps run once over the whole table (a column set per file costs more
    # than reading a small file), then the table is cut back into its files
    whole = pandas.concat(raw, ignore_index=True) if len(raw) > 1 else raw[0].reset_index(drop=True)
    sizes = [len(frame) for frame in raw]
    if options.get("include_path_column"):
        whole[PATH_COLUMN] = pandas.Series(relatives).repeat(sizes).to_numpy()
    for name, value in columns:
        whole = _column_step(pandas, whole, name, value, relatives, sizes)
    if reader == "read_delimited" and options.get("infer_column_types", True) is not False:
        whole = _infer_dates(pandas, whole)
    bounds = [0, *itertools.accumulate(sizes)]
    return [(path, whole.iloc[bounds[i] : bounds[i + 1]]) for i, path in enumerate(files)]


def _column_step(pandas: Any, frame: Any, name: str, value: Any, relatives: list[str], sizes: list[int]) -> Any:
    if name == "extract_columns_from_partition_format":
        text = str(value.get("partition_format") if isinstance(value, dict) else value)
        per_file = []
        for relative in relatives:
            found = partition_values(relative, text)
            if found is None:
                raise ValueError(f"{relative} does not have the partition format {text!r}")
            per_file.append(found)
        for column in per_file[0] if per_file else {}:
            frame[column] = pandas.Series([found[column] for found in per_file]).repeat(sizes).to_numpy()
        return frame
    names = [value] if isinstance(value, str) else list(value or [])
    if name == "drop_columns":
        return frame.drop(columns=names, errors="ignore")
    missing = [column for column in names if column not in frame.columns]
    if missing:
        raise ValueError(f"keep_columns names columns the table does not have: {missing}")
    return frame[names]


def table_batches(
    folder: str, workdir: str, partition_keys: Sequence[str] = (), size: str | int | None = None
) -> list[MiniBatch]:
    """Cut a table into mini-batches (see the module) and write each one's DataFrame to ``workdir``.

    :param folder: the folder with the MLTable file.
    :param workdir: where the mini-batches' DataFrames go (the run's temporary folder).
    :param partition_keys: columns whose values make the partitions (none: slices by size).
    :param size: ``mini_batch_size`` (a data size); ignored with partition keys.
    """
    tables = read_table(folder)
    os.makedirs(workdir, exist_ok=True)
    batches: list[MiniBatch] = []

    def add(frame: Any, label: str, keys: dict[str, Any] | None) -> None:
        path = os.path.join(workdir, f"mini-batch-{len(batches):06d}.pkl")
        frame.reset_index(drop=True).to_pickle(path)
        batches.append(MiniBatch(items=[label], count=len(frame), table=path, keys=keys, label=label))

    if partition_keys:
        for key_values, frame in partitions(tables, folder, partition_keys):
            add(frame, ", ".join(f"{k}={v}" for k, v in key_values.items()), key_values)
        return batches
    limit = parse_data_size(size) if size is not None else DEFAULT_TABLE_MINI_BATCH_BYTES
    for path, frame in tables:
        rows = len(frame)
        per_row = max(1.0, os.path.getsize(path) / max(1, rows))
        step = max(1, int(limit // per_row))
        relative = os.path.relpath(path, folder)
        for start in range(0, max(rows, 1), step):
            part = frame.iloc[start : start + step]
            if len(part):
                add(part, f"{relative} rows {start + 1}-{start + len(part)}", None)
    return batches


def partitions(
    tables: list[tuple[str, Any]], folder: str, partition_keys: Sequence[str]
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Each partition of a table (:func:`read_table`), in order of its keys' values: (the key values, as
    ``mini_batch_context.partition_key_value`` holds them, its rows). A missing value is a value too.

    :param tables: the table, per file.
    :param folder: its folder, for messages.
    :param partition_keys: the columns whose values make the partitions.
    """
    pandas = _pandas()
    whole = pandas.concat([frame for _path, frame in tables], ignore_index=True)
    missing = [key for key in partition_keys if key not in whole.columns]
    if missing:
        raise ValueError(
            f"the partition keys {missing} are not columns of the table in {folder} (its columns: "
            f"{list(whole.columns)})"
        )
    keys = list(partition_keys)
    for values, frame in whole.groupby(keys if len(keys) > 1 else keys[0], sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        yield {key: _plain(value) for key, value in zip(keys, values, strict=True)}, frame


def partition_folders(folder: str, partition_keys: Sequence[str]) -> list[str]:
    """Where each partition's outputs go below ``results/`` (:func:`~azureml_parallel_r.compute.tables.partition_path`,
    as the entry script names them): the items a run over the table must account for.

    :param folder: the folder with the MLTable file.
    :param partition_keys: the columns whose values make the partitions.
    """
    return sorted(partition_path(keys) for keys, _frame in partitions(read_table(folder), folder, partition_keys))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else value


def file_partitions(
    input_dir: str, files: list[str], partition_keys: Sequence[str], partition_format: str | None
) -> list[MiniBatch]:
    """A file input's mini-batches by partition: the files whose paths give the same values of the keys (fields of
    ``partition_format``, V1PART) make one mini-batch, in order of the values.

    :param input_dir: the input folder (paths are matched relative to it).
    :param files: the input's files.
    :param partition_keys: the fields that make the partitions.
    :param partition_format: the path format naming the fields.
    """
    if not partition_format:
        raise ValueError(
            "partition keys on a file input need a partition format naming them (like {user}/{season}/{genres}.wav)"
        )
    _regex, names = partition_format_regex(partition_format)
    unknown = [key for key in partition_keys if key not in names]
    if unknown:
        raise ValueError(f"the partition keys {unknown} are not fields of the partition format {partition_format!r}")
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in files:
        relative = os.path.relpath(path, input_dir).replace(os.sep, "/")
        values = partition_values(relative, partition_format)
        if values is None:
            raise ValueError(f"the input file {relative!r} does not have the partition format {partition_format!r}")
        groups.setdefault(tuple(values[key] for key in partition_keys), []).append(path)
    return [
        MiniBatch(items=group, count=len(group), keys=dict(zip(partition_keys, values, strict=True)))
        for values, group in sorted(groups.items())
    ]
