"""A table's mini-batch for R: where its outputs go, and the CSV R reads it from.

On a tabular input (an ``mltable`` input, a TabularDataset) the parallel runtime hands ``run()`` a pandas DataFrame:
the rows of one partition (with ``partition_keys``; ``mini_batch_context.partition_key_value`` says which) or a
slice of the table of about ``mini_batch_size`` bytes. R gets it as a data.frame in
``process_partition(data, keys, output_dir, args)``:

- **Where its outputs go** (:func:`partition_path`): ``results/<key>=<value>/...`` in the order of the partition
  keys (``Store=1000/Brand=dominicks``), each value percent-encoded where it is not a plain path character, so
  that every value (a slash, ``..``, an empty string: ``(empty)``, a missing value: ``(missing)``) makes one safe
  folder name and two different partitions never share one. A mini-batch without partition keys is
  ``rows-<digest>``, the digest of its data: a retried mini-batch has the same rows, hence the same folder, and its
  earlier result is reused.
- **How R reads it** (:func:`write_table`): a UTF-8 CSV, numbers written exactly (Python's shortest repr), a
  missing value written as :data:`NA_TEXT` (a text no real value holds, so that an empty string and the text
  ``"NA"`` stay what they are), a carriage return in a text as :data:`CR_TEXT`, the column names beside it (R's reader
  trims them), and each column's R class (``integer``, ``numeric``, ``logical``, ``character``,
  ``Date``, ``POSIXct``) from its pandas dtype; R reads it with ``read.csv(colClasses = ...)``.

Standard library only (the DataFrame is used through its own methods): this module ships to the compute nodes.
"""

from __future__ import annotations

import hashlib
import math
import urllib.parse
from typing import Any

__all__ = ["MISSING", "NA_TEXT", "key_values", "partition_path", "r_classes", "write_table"]

NA_TEXT = "\x1fNA\x1f"  # how a missing value is written in the CSV R reads (unit separators: in no real value)
CR_TEXT = "\x1fCR\x1f"  # how a carriage return in a text is written there (R's reader ends a line at one)
MISSING = "(missing)"  # a missing key value's folder name (a real "(missing)" is encoded: %28missing%29)
EMPTY = "(empty)"  # an empty key value's folder name
SAFE = "-_.~ ,+@"  # characters kept as they are in a key value's folder name; the others are percent-encoded
INT32 = 2**31 - 1


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pandas.NA (whose comparison raises: not missing then)
    except (TypeError, ValueError):
        return False


def key_text(value: Any) -> str | None:
    """A partition key's value as text, as ``str()`` gives it (None when missing); a whole float is written
    without its ``.0``, as R and the path column of a partitioned folder write it.

    :param value: the value.
    """
    if _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # a numpy scalar
        return key_text(value.item())
    return str(value)


def key_values(keys: dict[str, Any] | None) -> dict[str, Any]:
    """The partition keys as plain JSON values for R (numbers stay numbers, a missing value is null).

    :param keys: ``mini_batch_context.partition_key_value``, or None.
    """
    values: dict[str, Any] = {}
    for name, value in (keys or {}).items():
        plain = value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else value
        if _is_missing(plain):
            values[str(name)] = None
        elif isinstance(plain, bool | int | float | str):
            values[str(name)] = plain
        else:
            values[str(name)] = str(plain)
    return values


def _segment(text: str | None) -> str:
    if text is None:
        return MISSING
    encoded = urllib.parse.quote(text, safe=SAFE)
    if encoded in ("", ".", ".."):
        return "%2E" * len(encoded) if encoded else EMPTY
    return encoded


def partition_path(keys: dict[str, Any] | None, frame: Any = None) -> str:
    """Where a mini-batch's outputs go below ``results/`` (see the module): ``key=value/...`` for a partition, or
    ``rows-<digest>`` of ``frame``'s data without partition keys.

    :param keys: ``mini_batch_context.partition_key_value`` (None or empty: no partition keys).
    :param frame: the mini-batch's DataFrame, for the digest.
    """
    if keys:
        return "/".join(f"{_segment(str(name))}={_segment(key_text(value))}" for name, value in keys.items())
    digest = hashlib.sha256()
    if frame is not None:
        digest.update(frame.to_csv(index=False, na_rep=NA_TEXT).encode("utf-8"))
    return f"rows-{digest.hexdigest()[:16]}"


def r_classes(frame: Any) -> list[str]:
    """Each column's R class, from its pandas dtype: ``integer`` (whole numbers that fit R's 32 bits, else
    ``numeric``), ``numeric``, ``logical``, ``Date`` (dates at midnight without a time zone), ``POSIXct``,
    ``character`` (text, categories, anything else).

    :param frame: a pandas DataFrame.
    """
    classes = []
    for i in range(len(frame.columns)):
        column = frame.iloc[:, i]
        kind = getattr(column.dtype, "kind", "O")
        if kind in "iu":  # numpy's integers hold no missing value
            values = column.to_numpy()
            fits = not len(values) or (int(values.min()) >= -INT32 and int(values.max()) <= INT32)
            classes.append("integer" if fits else "numeric")
        elif kind == "f":
            classes.append("numeric")
        elif kind == "b":
            classes.append("logical")
        elif kind == "M" and getattr(column.dtype, "tz", None) is None:
            values = column.to_numpy()  # datetime64: a missing one (NaT) is not equal to itself
            midnight = bool(((values == values.astype("datetime64[D]")) | (values != values)).all())
            classes.append("Date" if midnight else "POSIXct")
        elif kind == "M":
            classes.append("POSIXct")
        else:
            classes.append("character")
    return classes


def write_table(frame: Any, path: str) -> dict[str, Any]:
    """Write ``frame`` as the CSV R reads (see the module); return how R reads it: ``{"classes": [...], "names":
    [...], "na": ...}`` (the names travel beside the CSV: R's reader trims a name's spaces).

    :param frame: the mini-batch's pandas DataFrame.
    :param path: the CSV to write.
    """
    classes = r_classes(frame)
    out = frame.copy(deep=False)
    for i, kind in enumerate(classes):  # by position: two columns may share a name
        column = out.iloc[:, i]
        if kind == "POSIXct":  # in UTC, as R reads it back
            if getattr(column.dtype, "tz", None) is not None:
                column = column.dt.tz_convert("UTC").dt.tz_localize(None)
            out.isetitem(i, column.dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
        elif kind == "Date":
            out.isetitem(i, column.dt.strftime("%Y-%m-%d"))
        elif kind == "logical":
            out.isetitem(i, column.map({True: "TRUE", False: "FALSE"}))
        elif kind == "character" and any(isinstance(v, str) and "\r" in v for v in column):
            out.isetitem(i, column.map(lambda v: v.replace("\r", CR_TEXT) if isinstance(v, str) else v))
    out.to_csv(path, index=False, header=False, na_rep=NA_TEXT, encoding="utf-8", lineterminator="\n")
    return {"classes": classes, "names": [str(name) for name in frame.columns], "na": NA_TEXT, "cr": CR_TEXT}
