"""What may be a run's input: a folder named relative to the datastore, and the files found under it.

Both checks refuse rather than guess, with what to fix, before anything is registered: a path that is not a
folder relative to the datastore (a URL, an absolute path, ``..``) would otherwise be read as some other folder,
and a folder whose listing is incomplete (a subfolder that cannot be read, an entry that is not a file) would
otherwise lose those files from the run without a word. Standard library only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|[\\/])|^azureml:", re.IGNORECASE)
# what cannot stand as it is on one line of a log: control characters (C0, C1), Unicode line breaks, and the
# surrogate escapes Python gives bytes that are not UTF-8
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")
LISTED = 10  # entries named in a listing error


class InputFolderError(ValueError):
    """An input folder cannot be used whole: a subfolder cannot be listed, or an entry is not a regular file."""


def datastore_folder(path: str, what: str = "input_path", *, placeholders: tuple[str, ...] = ()) -> str:
    """``path`` as a folder relative to the datastore (spaces around it and trailing ``/`` dropped), or a
    ``ValueError`` that says what is wrong with it.

    :param path: the setting's value, e.g. ``r-script-inputs/2026-11-24``.
    :param what: the setting's name, for the message.
    :param placeholders: tokens allowed in the path although they hold characters that are not (``{run-id}``).
    """
    if not isinstance(path, str):
        raise ValueError(f"{what} must be a datastore folder (a string), got {path!r}")
    shown = repr(path)
    folder = path.strip().rstrip("/")
    if not folder:
        raise ValueError(f"{what} is empty: give a folder relative to the datastore, e.g. r-script-inputs/2026-11-24")
    example = "a folder relative to the datastore, such as r-script-inputs/2026-11-24"
    if URL.match(folder):
        raise ValueError(f"{what} {shown} is a URL or an asset reference; give {example}")
    if folder.startswith(("/", "\\")):
        raise ValueError(f"{what} {shown} is an absolute path; give {example} (without the leading '/')")
    if UNPRINTABLE.search(folder):
        raise ValueError(f"{what} {shown} holds control characters or line breaks; give {example}")
    plain = folder
    for token in placeholders:
        plain = plain.replace(token, "x")
    if "\\" in plain:
        raise ValueError(f"{what} {shown} holds a backslash; separate folders with '/'")
    parts = plain.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{what} {shown} has an empty, '.' or '..' part; give {example}")
    return folder


def printable(text: str) -> str:
    """``text`` as it can stand on one line of a log or a report: as it is when it holds nothing but printable
    characters, else quoted with its line breaks, control characters and bytes that are not UTF-8 escaped
    (Python's ``repr``), so that a crafted file name cannot forge a line of its own.

    :param text: a file name, a path or a message.
    """
    return repr(text) if UNPRINTABLE.search(text) else text


def list_input_files(input_dir: str) -> list[str]:
    """Return every file below ``input_dir``, sorted by relative path. Links that stay inside ``input_dir`` are
    followed, but a folder already walked (a link loop, or two links to one folder) is walked once: each file is one
    item. A link whose target lies outside ``input_dir`` is never followed, read or walked.

    Nothing is left out without a word: a subfolder that cannot be listed (no permission, an I/O error), an entry
    that is not a regular file (a link to nothing, a FIFO, a socket, a device) and a link out of the folder raise
    :class:`InputFolderError` naming each of them (a link with where it points).

    :param input_dir: the dataset folder.
    """
    prefix = os.path.join(input_dir, "")
    found = [entry.path for entry in _file_entries(input_dir)]
    found.sort(key=lambda path: path[len(prefix) :])
    return found


def list_input_entries(input_dir: str) -> list[tuple[str, int, int]]:
    """(relative path, size, modification time in ns) of every file below ``input_dir``, sorted by relative path,
    walked as :func:`list_input_files` walks it: one directory read per folder and one ``stat`` per file (a
    dataset's registration, whose fingerprint needs sizes and times).

    :param input_dir: the dataset folder.
    """
    prefix = os.path.join(input_dir, "")
    found: list[tuple[str, int, int]] = []
    problems: list[str] = []
    for entry in _file_entries(input_dir):
        try:
            info = entry.stat()  # follows a link to a file, as the engine's read will
        except OSError as exc:  # gone or unreadable since it was listed
            problems.append(f"{_relative(entry.path, prefix)} cannot be read ({exc.strerror})")
            continue
        found.append((entry.path[len(prefix) :], info.st_size, info.st_mtime_ns))
    _raise_problems(input_dir, problems)
    found.sort()
    return found


def link_target_outside(path: str, root: str) -> str | None:
    """Where the link ``path`` leads when that is outside the folder ``root`` (its real path), else None.

    :param path: a path below ``root`` that is a symbolic link.
    :param root: the input folder's real path (``os.path.realpath``).
    """
    target = os.path.realpath(path)
    return None if is_within(target, root) else target


def is_within(path: str, root: str) -> bool:
    """Whether the real path ``path`` is ``root`` or lies below it (both real paths).

    :param path: a real path.
    :param root: a real folder path.
    """
    return path == root or path.startswith(os.path.join(root, ""))


def _file_entries(input_dir: str) -> Iterator[os.DirEntry[str]]:
    """Every regular file below ``input_dir`` (links that stay inside it followed, each folder walked once), in no
    particular order, yielded a folder at a time; :class:`InputFolderError` at the end for what would be left out,
    and for every link that leads out of the folder (never followed: not even its target's type is read)."""
    if not os.path.isdir(input_dir):
        raise ValueError(f"input folder not found: {input_dir}")
    prefix = os.path.join(input_dir, "")
    root = os.path.realpath(input_dir)
    problems: list[str] = []
    walked: set[tuple[int, int]] = set()
    pending = [input_dir]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in walked:
                continue
            walked.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            problems.append(f"{_relative(folder, prefix)}/ cannot be listed ({exc.strerror})")
            continue
        for entry in entries:
            try:
                if entry.is_symlink() and (target := link_target_outside(entry.path, root)) is not None:
                    problems.append(
                        f"{_relative(entry.path, prefix)} is a link to {printable(target)}, outside the input folder"
                    )
                elif entry.is_dir():  # follows links
                    pending.append(entry.path)
                elif entry.is_file():
                    yield entry
                else:
                    problems.append(f"{_relative(entry.path, prefix)} is {_kind(entry)}")
            except OSError as exc:
                problems.append(f"{_relative(entry.path, prefix)} cannot be read ({exc.strerror})")
    _raise_problems(input_dir, problems)


def files_gone(path: str, gone: Sequence[str]) -> InputFolderError:
    """The error for files to rerun that are no longer in their folder, naming the first of them.

    :param path: the input folder (datastore path).
    :param gone: the files, relative to it.
    """
    return InputFolderError(f"{len(gone)} of the files to rerun are no longer under {path!r}: " + ", ".join(gone[:10]))


def _raise_problems(input_dir: str, problems: list[str]) -> None:
    if problems:
        problems.sort()
        raise InputFolderError(
            f"the input folder {input_dir} cannot be processed whole: {len(problems)} of its entries would be left "
            f"out: {'; '.join(problems[:LISTED])}{' ...' if len(problems) > LISTED else ''}. Make every folder "
            f"readable by the user that runs the workers (uid {os.geteuid()}) and keep only regular files in it (or "
            "links to files and folders inside it: a link out of the folder is never followed)"
        )


def _relative(path: str, prefix: str) -> str:
    relative = path[len(prefix) :] if path.startswith(prefix) else path
    return printable(relative or ".")  # unquoted when plain, so a message reads as a list of paths


def _kind(entry: os.DirEntry[str]) -> str:
    """What a directory entry that is neither a folder nor a regular file is."""
    if entry.is_symlink():
        try:
            mode = entry.stat().st_mode
        except OSError:
            return f"a link to nothing ({printable(os.readlink(entry.path))})"
    else:
        mode = entry.stat(follow_symlinks=False).st_mode
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"
