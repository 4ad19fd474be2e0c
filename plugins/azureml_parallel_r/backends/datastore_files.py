"""What every engine does with files on its datastore through a
:class:`~azureml_parallel_r.backends.results.ResultStore`: stage the files of a repair run, and read a file of a run's
output folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from azureml_parallel_r.backends.results import ResultStore

RERUNS_ROOT = "r-script-reruns"  # where a repair run's files are copied on blob storage (register_file_subset)


class DatastoreStore(Protocol):
    """An engine's datastore as these functions use it (the local folder, the Azure ML engines' blobs)."""

    def entries(self, prefix: str) -> Iterable[tuple[str, int, str]]:
        """(path relative to ``prefix``, size, version stamp) of every file below it."""

    def copy(self, source: str, target: str) -> None:
        """Copy one file within the datastore."""

    def read_text(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""


def stage_files(store: DatastoreStore, path: str, files: Sequence[str], tags: Mapping[str, str]) -> str:
    """Copy some files of a datastore folder under ``RERUNS_ROOT/<date>/<id>/`` with their relative paths, and return
    that folder. The id is derived from the folder, the files and the run key, so a retried task reuses the copies
    it made; a file already there with its size is not copied again.

    :param store: the engine's datastore.
    :param path: datastore path of the input folder.
    :param files: the files, relative to it.
    :param tags: the dataset's tags (``logical_date`` names the staging folder's date; the run key its id).
    """
    from azureml_parallel_r.inputs import files_gone

    chosen = sorted(set(files))
    key = json.dumps([path, chosen, tags.get("dag_id"), tags.get("dag_run_id")]).encode("utf-8")
    staging = f"{RERUNS_ROOT}/{tags.get('logical_date', 'undated')}/{hashlib.sha256(key).hexdigest()[:16]}"
    sizes = {relative: size for relative, size, _etag in store.entries(path)}
    gone = [relative for relative in chosen if relative not in sizes]
    if gone:
        raise files_gone(path, gone)
    copied = {relative: size for relative, size, _etag in store.entries(staging)}
    for relative in chosen:
        if copied.get(relative) != sizes[relative]:
            store.copy(f"{path}/{relative}", f"{staging}/{relative}")
    return staging


def read_output_file(store: DatastoreStore, output_path: str, name: str) -> str | None:
    """A file of a run's output folder (``validation-failures.jsonl``) as text, or None when it is not there.

    :param store: the engine's datastore.
    :param output_path: the run's output folder on the datastore (its record's ``output_path``).
    :param name: the file's name in that folder (no ``/``: only the folder's own files are read).
    """
    return store.read_text(_in_output_folder(output_path, name, "file"))


def _in_output_folder(output_path: str, name: str, what: str) -> str:
    """``<output folder>/<name>``, for a plain name (no ``/``, not ``..``) in a folder inside the datastore."""
    from azureml_parallel_r.inputs import datastore_folder

    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"not a {what} name of an output folder: {name!r}")
    folder = datastore_folder(output_path, "the run's output folder")  # relative, no '..': inside the datastore
    return f"{folder}/{name}"


def count_output_files(store: ResultStore, output_path: str, folder: str, suffix: str = ".json") -> int:
    """How many files named ``*<suffix>`` a folder of a run's output folder holds (``failures``: the failure records
    so far; a record being written is a temporary file of another name), counted from a listing: no file is read.

    :param store: the engine's datastore.
    :param output_path: the run's output folder on the datastore.
    :param folder: the folder's name in it (no ``/``).
    :param suffix: how the counted files' names end.
    """
    names = store.names(_in_output_folder(output_path, folder, "folder"))
    return sum(1 for name in names if name.endswith(suffix))
