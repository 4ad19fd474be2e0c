"""The MLTable file of a table's folder: which files it names, how their paths give partition values, whether a
parallel job can read it as a table, and its partitions from the paths alone. Shared by the local engine
(:mod:`azureml_parallel_r.engine.tables`, which reads the data) and the Azure engines' registration (which reads
only the file and the listing). No pandas here.

Sources: "Working with tables in Azure Machine Learning" (https://learn.microsoft.com/azure/machine-learning/
how-to-mltable: ``paths`` are ``file``, ``folder`` or ``pattern``; the transformations) and "Use parallel jobs in
pipelines" (https://learn.microsoft.com/azure/machine-learning/how-to-use-parallel-job-in-pipeline: an mltable input
needs an MLTable file "with the transformations: - read_delimited: section filled out").
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from typing import Any

from azureml_parallel_r.compute.tables import partition_path
from azureml_parallel_r.inputs import InputFolderError

MLTABLE_FILE = "MLTable"
READERS = ("read_delimited", "read_parquet", "read_json_lines")
COLUMN_STEPS = ("extract_columns_from_partition_format", "drop_columns", "keep_columns")


def is_table(folder: str) -> bool:
    """True when ``folder`` holds an ``MLTable`` file: a tabular input (HOWTO).

    :param folder: the input folder.
    """
    return os.path.isfile(os.path.join(folder, MLTABLE_FILE))


def load_mltable(folder: str) -> dict[str, Any]:
    """The MLTable file of ``folder``, as a mapping.

    :param folder: the table's folder.
    """
    import yaml  # type: ignore[import-untyped]

    path = os.path.join(folder, MLTABLE_FILE)
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an MLTable: its YAML is not a mapping")
    return data


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A glob of an MLTable ``pattern`` (``*`` within a folder, ``**`` across folders, ``?`` one character) as a regular
    expression over paths relative to the MLTable's folder."""
    out, i = "", 0
    text = pattern[2:] if pattern.startswith("./") else pattern
    while i < len(text):
        if text.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif text.startswith("**", i):
            out += ".*"
            i += 2
        elif text[i] == "*":
            out += "[^/]*"
            i += 1
        elif text[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(text[i])
            i += 1
    return re.compile(out + r"\Z")


def selected_paths(paths: Sequence[Any], every: Sequence[str]) -> list[str]:
    """Which of a folder's files (``every``, relative paths with ``/``) an MLTable's ``paths`` name, sorted, the
    MLTable file left out: only ever files of the folder (a ``file:`` naming another is refused).

    :param paths: the MLTable's ``paths`` list.
    :param every: every file of its folder.
    """
    known = set(every)
    found: list[str] = []
    for entry in paths or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"an MLTable path is one of file:, folder: or pattern:, got {entry!r}")
        ((kind, value),) = entry.items()
        value = str(value)
        if "://" in value:
            raise ValueError(f"the MLTable path {value!r} is a URL: the local engine reads paths in the folder only")
        relative = os.path.normpath(value).replace(os.sep, "/")
        if kind == "file":
            if relative not in known:
                raise ValueError(f"the MLTable names the file {value!r}, which is not a file of its folder")
            found.append(relative)
        elif kind == "folder":
            prefix = "" if relative == "." else relative + "/"
            found += [path for path in every if path.startswith(prefix)]
        elif kind == "pattern":
            regex = _pattern_regex(value)
            found += [path for path in every if regex.match(path)]
        else:
            raise ValueError(f"an MLTable path is one of file:, folder: or pattern:, got {kind}:")
    return sorted({path for path in found if path.rsplit("/", 1)[-1] != MLTABLE_FILE})


def not_a_table(path: str) -> InputFolderError:
    """The error for a folder registered as a table that holds no MLTable file, saying how to make it one.

    :param path: the folder's datastore path.
    """
    return InputFolderError(
        f"{path!r} holds no {MLTABLE_FILE} file, so it is a folder of files, not a table: add an MLTable file (paths "
        "and a read_delimited or read_parquet transformation; see docs/r-script.md), or register it as files"
    )


def check_mltable(text: str) -> dict[str, Any]:
    """An MLTable file's content, once it is one a parallel job can read as a table: a mapping with ``paths`` and a
    ``read_delimited``, ``read_parquet`` or ``read_json_lines`` transformation (HOWTO: an mltable input needs the
    MLTable file "with the transformations: - read_delimited: section filled out"); ``ValueError`` says what is missing.

    :param text: the MLTable file's text.
    """
    import yaml  # type: ignore[import-untyped,unused-ignore]

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the MLTable file is not YAML: {exc}") from None
    if not isinstance(spec, dict) or not spec.get("paths"):
        raise ValueError("the MLTable file names no paths (paths: - file: / folder: / pattern:)")
    steps = [next(iter(step)) for step in spec.get("transformations") or [] if isinstance(step, dict) and step]
    if not any(step in READERS for step in steps):
        raise ValueError(
            "the MLTable file has no read_delimited, read_parquet or read_json_lines transformation: a parallel job's "
            "mltable input needs one to be a table"
        )
    return spec


def partitions_from_paths(
    spec: dict[str, Any], every: Sequence[str], partition_keys: Sequence[str]
) -> list[str] | None:
    """A table's partitions (their outputs' folders) from its files' paths alone, without reading its data: when its
    MLTable puts every partition key back from the paths (``extract_columns_from_partition_format``, as Microsoft's
    partition sample writes it), each file's path gives its partition's values, as text, as the column holds them.
    None when the keys are columns of the data, which only reading it tells.

    :param spec: the MLTable file's content (:func:`check_mltable`).
    :param every: every file of the table's folder, relative, with ``/``.
    :param partition_keys: the partition keys.
    """
    formats = [
        (step["extract_columns_from_partition_format"] or {}).get("partition_format")
        for step in spec.get("transformations") or []
        if isinstance(step, dict) and isinstance(step.get("extract_columns_from_partition_format"), dict)
    ]
    if len(formats) != 1 or not formats[0]:
        return None
    _regex, names = partition_format_regex(str(formats[0]))
    if not set(partition_keys) <= set(names):
        return None
    found = set()
    for relative in selected_paths(spec.get("paths") or [], every):
        values = partition_values(relative, str(formats[0]))
        if values is None:
            raise ValueError(f"{relative} does not have the partition format {formats[0]!r}")
        found.add(partition_path({key: values[key] for key in partition_keys}))
    return sorted(found)


@functools.lru_cache(maxsize=64)
def partition_format_regex(partition_format: str) -> tuple[re.Pattern[str], list[str]]:
    """A ``partition_format`` (``{Store}/{Brand}/{file_name}.{extension}``) as a regular expression over a path
    relative to the table's folder, and the names of its fields; a ``{name:date format}`` field is refused.

    :param partition_format: the format.
    """
    names: list[str] = []
    out, last = "", 0
    for match in re.finditer(r"\{([^{}]*)\}", partition_format):
        out += re.escape(partition_format[last : match.start()])
        name = match.group(1)
        if ":" in name:
            raise ValueError(
                f"the partition format field {{{name}}} has a date format, which the local engine does not read"
            )
        names.append(name)
        out += f"(?P<f{len(names) - 1}>[^/]*?)" if name else "[^/]*?"
        last = match.end()
    out += re.escape(partition_format[last:])
    return re.compile(out.lstrip("/") + r"\Z"), names


def partition_values(relative: str, partition_format: str) -> dict[str, str] | None:
    """The ``{field}`` values of a path (relative to the input folder) by its ``partition_format``; None when the path
    does not have the format.

    :param relative: the path, with ``/``.
    :param partition_format: the format.
    """
    regex, names = partition_format_regex(partition_format)
    match = regex.match(relative)
    if match is None:
        return None
    return {name: match.group(f"f{i}") for i, name in enumerate(names) if name}
