"""Where one pipeline run's per-file outputs live, and how they appear atomically.

::

    <output>/results/<input path relative to the dataset root>/...   outputs of succeeded files
    <output>/failures/<input path relative to the dataset root>.json  why a file failed (latest attempt)
    <local disk>/azureml-parallel-r-scratch/<process>/<n>/            private per-file scratch folders

The v2 engine mounts ``results/`` and ``failures/`` as outputs of their own (``--results-dir``,
``--failures-dir``), so that they and the rows file are three write mounts of which none holds another; the
paths a result row lists stay relative to the run's output folder (``results/<path>/<file>``) on every engine.

R writes into a scratch folder on the node's local disk. Only when the file succeeds are its outputs put
under ``results/<path>/``: in one rename of the folder where the output folder is on the same local file
system (the local engine), else by copying each file once (on Azure ML the output folder is a blobfuse
write mount, where a directory rename is a copy-and-delete or is refused). A failed, crashed or timed-out
file writes nothing under ``results/``.

On blob storage a copy is not atomic: a process killed in the middle of one can leave part of a file's
outputs. The truth is therefore the file's result row (``run()`` returns it only after every output is
written; the runtime writes the rows file at the end of the job): validation counts a file as succeeded
only with its row, and a row's listed outputs must all exist. Each input has its own folder, so two inputs
never overwrite each other's outputs; failure records are written whole (temporary file + rename).
Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from typing import Any

from azureml_parallel_r.compute.records import FAILURES_DIR, RESULTS_DIR, FailureRecord

HASHED_FAILURES = "_hashed"
SCRATCH_DIR = "azureml-parallel-r-scratch"
FULL_MARKER = ".disk-full"  # touched in the scratch folder by a process that found the scratch disk full
LOW_SPACE_BYTES = 1 << 20  # a scratch disk with less free space than this counts as full


# Characters Python's str.splitlines() (and other readers) treat as line breaks but JSON leaves unescaped
# with ensure_ascii=False; escaped so that one JSON value is always one line.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_LINE_BREAK_RE = re.compile("[\x85\u2028\u2029]")
FAILURE_NAME_BYTES = 200  # a failure record's file name is at most this long (file systems allow 255)


def json_line(data: Any) -> str:
    """``data`` as one line of JSON, whatever it holds: Unicode line breaks (U+2028, U+2029, U+0085) escaped,
    and names that are not valid UTF-8 (surrogate-escaped by Python) written as JSON escapes.

    :param data: anything ``json.dumps`` accepts (other objects become their ``str``).
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: a file name that is not UTF-8
        text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
    return _LINE_BREAK_RE.sub(lambda match: _LINE_BREAKS[match.group()], text)


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old file or the whole new one.

    :param path: destination file; its folder is created when missing.
    :param data: anything ``json.dumps`` accepts; text that is not UTF-8 is written as JSON escapes.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json_line(data))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk: no half-written file left beside the record
            os.remove(tmp)
        raise


class FilingError(OSError):
    """A succeeded file's outputs cannot be put under ``results/`` as they are (a link to nothing or to a folder,
    the file's output folder gone)."""


class InputOutsideRootError(ValueError):
    """A mini-batch item is not under the dataset's mount root."""


def relative_input_path(input_path: str, input_root: str) -> str:
    """Return the input's path relative to the dataset root, as it appears under ``results/``.

    :param input_path: the file as the runtime handed it to ``run()``.
    :param input_root: the folder the dataset is mounted or downloaded at.
    :raises InputOutsideRootError: for a path outside the root (its outputs would have no place).
    """
    path = os.path.normpath(os.path.abspath(input_path))
    prefix = os.path.join(os.path.normpath(os.path.abspath(input_root)), "")
    if not path.startswith(prefix):
        raise InputOutsideRootError(
            f"input {input_path!r} is not under the dataset root {input_root!r}: the outputs of a file are filed "
            "under its path relative to that root. Check --input-root / --input-name"
        )
    return path[len(prefix) :]


def output_folders(
    output_dir: str | None, results_dir: str | None = None, failures_dir: str | None = None
) -> tuple[str, str]:
    """The absolute results and failures folders: each as given, else under ``output_dir``.

    :param output_dir: the step's output directory, or None.
    :param results_dir: the results folder, or None for ``<output_dir>/results``.
    :param failures_dir: the failure records' folder, or None for ``<output_dir>/failures``.
    :raises ValueError: a folder is neither given nor derivable, saying what to pass.
    """
    if output_dir is None and (results_dir is None or failures_dir is None):
        raise ValueError(
            "no output directory: pass --output-dir (or set AZUREML_BI_OUTPUT_PATH), or both --results-dir and "
            "--failures-dir"
        )
    results = results_dir or os.path.join(str(output_dir), RESULTS_DIR)
    failures = failures_dir or os.path.join(str(output_dir), FAILURES_DIR)
    return os.path.abspath(results), os.path.abspath(failures)


class OutputLayout:
    """The results, failures and scratch folders of one pipeline run's output directory.

    :param output_dir: the step's output directory (``--output-dir`` or ``AZUREML_BI_OUTPUT_PATH``), holding
        ``results/`` and ``failures/``; None when both are given on their own.
    :param process_name: a name unique to this worker process, for its scratch folder.
    :param scratch_dir: the local folder for scratch folders (default: the system's temporary folder).
    :param results_dir: the results folder when it is not ``<output_dir>/results`` (the v2 engine mounts it on
        its own, so that no two write mounts share a prefix).
    :param failures_dir: the failure records' folder when it is not ``<output_dir>/failures``.
    """

    def __init__(
        self,
        output_dir: str | None,
        process_name: str,
        scratch_dir: str | None = None,
        *,
        results_dir: str | None = None,
        failures_dir: str | None = None,
    ) -> None:
        self.results_dir, self.failures_dir = output_folders(output_dir, results_dir, failures_dir)
        self.scratch_root = os.path.join(scratch_dir or tempfile.gettempdir(), SCRATCH_DIR, process_name)
        self._count = 0
        self._made_dirs: set[str] = set()
        self._failures_exist = True
        # whether scratch folders can be renamed into the output folder: None until the first commit finds out
        self.renames: bool | None = None
        self._root_user = os.geteuid() == 0  # may use the blocks a file system keeps for root

    def results_path(self, relative_path: str) -> str:
        return os.path.join(self.results_dir, relative_path)

    def failure_path(self, relative_path: str) -> str:
        """Where the failure record of an input goes: ``failures/<relative path>.json``, or, for a name that
        cannot be a file name there (not UTF-8, too long, or colliding with another input's folder, such as
        ``a`` and ``a.json/b``), ``failures/_hashed/<sha256 of the path>.json``. The record names the input."""
        direct = os.path.join(self.failures_dir, relative_path + ".json")
        name = os.path.basename(direct)
        try:
            name.encode("utf-8")
            fits = len(name.encode("utf-8")) <= FAILURE_NAME_BYTES
        except UnicodeEncodeError:
            fits = False
        return direct if fits else self._hashed_failure_path(relative_path)

    def _hashed_failure_path(self, relative_path: str) -> str:
        digest = hashlib.sha256(os.fsencode(relative_path)).hexdigest()
        return os.path.join(self.failures_dir, HASHED_FAILURES, f"{digest}.json")

    def new_scratch(self) -> str:
        """Create and return an empty private folder for one file's outputs."""
        (path,) = self.scratch_paths(1)
        os.mkdir(path)
        return path

    def scratch_paths(self, count: int) -> list[str]:
        """Return ``count`` fresh private folder paths for files' outputs, not yet created (the R session
        creates each one right before its file, as a hand-written R loop would); their parent exists."""
        self._makedirs(self.scratch_root)
        first = self._count + 1
        self._count += count
        return [os.path.join(self.scratch_root, f"{n:08d}") for n in range(first, self._count + 1)]

    def _makedirs(self, path: str) -> None:
        """``os.makedirs(path, exist_ok=True)``, remembered so the hot path does not ask twice. The scratch folders'
        shared parent may be removed by another worker process of the node that just ended (:meth:`remove_scratch`)
        between ``makedirs`` making it and making ``path`` in it: then it is made again."""
        if path not in self._made_dirs:
            for attempt in range(3):
                try:
                    os.makedirs(path, exist_ok=True)
                    break
                except FileNotFoundError:  # a parent made here was removed by another process before path was
                    if attempt == 2:
                        raise
            self._made_dirs.add(path)

    def commit(self, scratch: str, relative_path: str) -> list[str]:
        """Put a succeeded file's outputs at ``results/<relative_path>/``: one rename where the file system
        allows it, else each file copied once. Returns the output files, relative to the output directory.

        What an earlier attempt of the same input (a retried mini-batch) left there is replaced. The common
        case costs no check: the rename (or the copy's ``mkdir``) itself reports an earlier attempt's folder.
        Whether renames work is decided once per process (scratch and output on one file system, and the
        first rename not refused), so an output mount that refuses them (blobfuse: another file system) sees
        no failed rename per file.

        :param scratch: the folder R wrote into.
        :param relative_path: the input's path relative to the dataset root.
        """
        target = self.results_path(relative_path)
        self._makedirs(os.path.dirname(target))
        try:
            outputs = sorted(_files_below(scratch))
        except FileNotFoundError as exc:
            if os.path.isdir(scratch):
                raise
            raise FilingError(
                errno.ENOENT, "the file's output folder is gone (did the R script remove it?)", scratch
            ) from exc
        try:
            if not (self._renames_work() and self._rename_into(scratch, target)):
                self._copy_into(scratch, target, outputs)
        except OSError:
            _remove(target)  # a half copy (a full disk, a refused write): nothing of the file under results/
            raise
        base = os.path.join(RESULTS_DIR, relative_path, "")
        return [base + name for name in outputs]

    def scratch_full(self, since: float) -> str | None:
        """Why a file that started at ``since`` (``time.time()``) may have lost writes to the node's scratch disk,
        or None. R only warns, or says nothing at all (a ``png()`` device), when a write fails on a full disk, and
        leaves a truncated output: so a file counts as failed when the scratch disk is full when it ends (less than
        ``LOW_SPACE_BYTES`` free), or when another process of this node found it full since the file started (it
        may have freed space since: its own failed file's scratch folder). Two system calls.

        :param since: when the file started.
        """
        parent = os.path.dirname(self.scratch_root)
        marker = os.path.join(parent, FULL_MARKER)
        try:
            disk = os.statvfs(parent)
        except OSError:
            return None
        free = (disk.f_bfree if self._root_user else disk.f_bavail) * disk.f_frsize
        if free < LOW_SPACE_BYTES:
            with contextlib.suppress(OSError):  # an empty file needs no space; its time says when
                with open(marker, "a"):
                    pass
                os.utime(marker)
            return f"the node's scratch disk ({parent}) is full ({free} bytes free)"
        try:
            if os.stat(marker).st_mtime >= since:
                return f"the node's scratch disk ({parent}) was full while this file ran"
        except OSError:
            pass
        return None

    def _renames_work(self) -> bool:
        if self.renames is None:
            try:
                self.renames = os.stat(self.scratch_root).st_dev == os.stat(self.results_dir).st_dev
            except OSError:
                self.renames = False
        return self.renames

    def _rename_into(self, scratch: str, target: str) -> bool:
        """Move the scratch folder to ``target`` in one rename; False when this file system refuses renames."""
        try:
            os.rename(scratch, target)  # same local file system: the whole folder appears at once
            return True
        except OSError as exc:
            if exc.errno not in _TARGET_EXISTS:  # EXDEV, or a mount refusing directory renames: copy from now on
                self.renames = False
                return False
        _remove(target)  # an earlier attempt's outputs
        os.rename(scratch, target)
        return True

    def _copy_into(self, scratch: str, target: str, outputs: list[str]) -> None:
        """Copy each output file once into a fresh ``target`` folder, then drop the scratch folder."""
        try:
            os.mkdir(target)
        except FileExistsError:  # an earlier attempt's outputs
            _remove(target)
            os.mkdir(target)
        made = {target}
        for name in outputs:
            destination = os.path.join(target, name)
            folder = os.path.dirname(destination)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            shutil.copyfile(os.path.join(scratch, name), destination)
        shutil.rmtree(scratch, ignore_errors=True)

    def discard(self, scratch: str) -> None:
        """Remove a failed file's scratch folder and whatever R left in it."""
        shutil.rmtree(scratch, ignore_errors=True)

    def record_failure(self, relative_path: str, record: FailureRecord) -> int:
        """Write the failure record of one input and return its attempt number (1 for the first failure).

        Any input name can be recorded (see :meth:`failure_path`); when even the fallback cannot be written
        (a full or read-only disk), the error is raised for the caller to log: it must not fail other files.

        :param relative_path: the input's path relative to the dataset root.
        :param record: what went wrong (its attempt and time are filled in here).
        """
        path = self.failure_path(relative_path)
        attempt = 1
        try:
            with open(path, encoding="utf-8") as handle:
                attempt = int(json.load(handle).get("attempt", 0)) + 1
        except (OSError, ValueError, AttributeError):
            pass
        self._failures_exist = True
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        data = dataclasses.replace(record, relative_path=relative_path, attempt=attempt, time=stamp).to_json()
        try:
            write_json_atomic(path, data)
        except OSError:  # a collision with another input's folder (``a`` and ``a.json/b``), or the like
            write_json_atomic(self._hashed_failure_path(relative_path), data)
        return attempt

    def refresh(self) -> None:
        """Once per mini-batch: whether any failure record exists yet (none: nothing to clear, no system call
        per file). The folder itself may exist empty: a write mount of its own is there from the start."""
        try:
            with os.scandir(self.failures_dir) as entries:
                self._failures_exist = next(entries, None) is not None
        except OSError:
            self._failures_exist = False

    def clear_failure(self, relative_path: str) -> None:
        """Forget an earlier failed attempt of an input that has now succeeded."""
        if not self._failures_exist:
            return
        for path in (self.failure_path(relative_path), self._hashed_failure_path(relative_path)):
            with contextlib.suppress(OSError):
                os.remove(path)

    def remove_stale_scratch(self) -> None:
        """Remove the scratch folders that processes of this host left when they were killed (a mini-batch
        past ``run_invocation_timeout``): folders named ``<this host>-<pid>`` whose process is gone."""
        parent = os.path.dirname(self.scratch_root)
        host = socket.gethostname()
        with contextlib.suppress(OSError):
            for name in os.listdir(parent):
                owner, _, pid = name.rpartition("-")
                if owner == host and pid.isdigit() and not _process_alive(int(pid)):
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)

    def remove_scratch(self) -> None:
        """Remove this process's scratch folder (and the shared parent once it is empty)."""
        shutil.rmtree(self.scratch_root, ignore_errors=True)
        self._made_dirs.clear()
        with contextlib.suppress(OSError):  # other processes still use it
            os.rmdir(os.path.dirname(self.scratch_root))


_TARGET_EXISTS = (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def _remove(path: str) -> None:
    """Remove a folder tree or a file (whatever an earlier attempt left at a results path)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _files_below(folder: str, prefix: str = "") -> list[str]:
    """Relative paths of the files below ``folder`` (no symlinks followed). A link is filed as what it points to
    where outputs are copied: a link to nothing or to a folder raises :class:`FilingError`, wherever outputs go, so
    that a file's outputs are the same on every engine. Links cost a ``stat`` each; nothing else does."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                found.extend(_files_below(entry.path, f"{prefix}{entry.name}/"))
                continue
            if entry.is_symlink():
                try:
                    points_to_folder = entry.is_dir()
                except OSError:
                    points_to_folder = False
                if points_to_folder or not os.path.exists(entry.path):
                    what = "a link to a folder" if points_to_folder else "a link to nothing"
                    raise FilingError(
                        errno.EINVAL, f"output {prefix + entry.name!r} is {what}; write files, not links", entry.path
                    )
            found.append(prefix + entry.name)
    return found
