"""What may be an input: datastore folders named relative to the datastore, and listings that leave nothing out."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from azureml_parallel_r.inputs import InputFolderError, datastore_folder, list_input_files, printable

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def without_root_powers() -> None:
    """Pre-exec hook: the process keeps its user but loses root's power to read what it has no permission for, so
    file modes apply to it as they do to the compose image's non-root user (a no-op when not root)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "cannot drop a capability")


def test_input_files_are_listed_recursively_in_path_order(tmp_path: Path) -> None:
    for name in ["b/2", "a/1", "c", "a/z/3"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [str(Path(p).relative_to(tmp_path)) for p in list_input_files(str(tmp_path))] == ["a/1", "a/z/3", "b/2", "c"]


def test_links_to_files_and_folders_are_followed_and_a_loop_walked_once(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.png").write_text("x")
    (tmp_path / "alias.png").symlink_to(tmp_path / "real" / "x.png")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real")
    names = [os.path.relpath(p, tmp_path) for p in list_input_files(str(tmp_path))]
    assert names == ["alias.png", "real/x.png"]


def test_entries_that_are_not_files_are_named_never_skipped(tmp_path: Path) -> None:
    """A dangling link, a FIFO and a socket would each be a file lost without a word: the listing refuses them."""
    (tmp_path / "good.png").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gone.png").symlink_to(tmp_path / "deleted.png")
    os.mkfifo(tmp_path / "sub" / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        with pytest.raises(InputFolderError) as refused:
            list_input_files(str(tmp_path))
    finally:
        server.close()
    message = str(refused.value)
    assert "3 of its entries would be left out" in message
    assert f"sub/gone.png is a link to nothing ({tmp_path / 'deleted.png'})" in message
    assert "sub/pipe is a FIFO" in message and "sock is a socket" in message
    assert "good.png" not in message


def test_a_subfolder_the_workers_cannot_read_fails_the_listing_naming_it(tmp_path: Path) -> None:
    """Mode 000 on a subfolder: os.walk would skip it silently and the run would report "2/2 files succeeded"."""
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.png").write_text("x")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "b.png").write_text("x")
    (tmp_path / "private").chmod(0)
    code = "import sys; from azureml_parallel_r.inputs import list_input_files; print(list_input_files(sys.argv[1]))"
    try:
        listed = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, preexec_fn=without_root_powers
        )
    finally:
        (tmp_path / "private").chmod(0o755)
    assert listed.returncode == 1, listed.stdout
    assert "InputFolderError" in listed.stderr and "private/ cannot be listed (Permission denied)" in listed.stderr
    assert "readable by the user that runs the workers" in listed.stderr


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc", "is an absolute path"),
        ("/r-script-inputs/2026-11-24", "is an absolute path"),
        ("azureml://datastores/workspaceblobstore/paths/r-script-inputs/2026-11-24", "is a URL or an asset reference"),
        ("wasbs://data@account.blob.core.windows.net/x", "is a URL or an asset reference"),
        ("azureml:r-script-inputs:3", "is a URL or an asset reference"),
        ("C:\\data\\inputs", "is a URL or an asset reference"),
        ("r-script-inputs/../../etc", "has an empty, '.' or '..' part"),
        ("r-script-inputs//2026-11-24", "has an empty, '.' or '..' part"),
        ("r-script-inputs\\2026-11-24", "holds a backslash"),
        ("r-script-inputs/2026-11-24\n[info] forged", "holds control characters or line breaks"),
        ("   ", "is empty"),
        (5, "must be a datastore folder"),
    ],
)
def test_anything_but_a_folder_relative_to_the_datastore_is_refused(path, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        datastore_folder(path)


def test_a_relative_folder_is_kept_and_placeholders_may_hold_what_paths_may_not() -> None:
    assert datastore_folder(" r-script-inputs/2026-11-24/ ") == "r-script-inputs/2026-11-24"
    assert datastore_folder("out/{run-id}", placeholders=("{run-id}",)) == "out/{run-id}"
    assert datastore_folder("data:2026/x") == "data:2026/x"  # a colon inside a name is a name


def test_names_are_printable_on_one_line() -> None:
    assert printable("camera-b/broken.png") == "camera-b/broken.png"
    assert printable("a\n[error] forged.png") == "'a\\n[error] forged.png'"
    assert printable("x\u2028y\x1b[31m") == "'x\\u2028y\\x1b[31m'"
    assert printable(os.fsdecode(b"bad\xff.png")) == "'bad\\udcff.png'"


def test_links_that_leave_the_input_folder_are_refused_naming_where_they_point(tmp_path: Path) -> None:
    """``ln -s /etc/hostname in/x.txt`` and ``ln -s / in/all``: neither is followed (its files would be read and
    copied into results/), both are named with their targets; a link that stays inside keeps working."""
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "a.png").write_text("x")
    (inputs / "inside.png").symlink_to(inputs / "sub" / "a.png")
    (inputs / "inside-folder").symlink_to(inputs / "sub")
    listed = [os.path.relpath(p, inputs) for p in list_input_files(str(inputs))]
    assert "inside.png" in listed and len(listed) == 2  # the folder is walked once, by one of its two names
    (inputs / "inside-folder").unlink()  # the links out are then named by one path each
    (inputs / "x.txt").symlink_to("/etc/hostname")
    (inputs / "sub" / "all").symlink_to("/")
    (inputs / "sub" / "up").symlink_to("../..")  # relative, leaving through the parent
    with pytest.raises(InputFolderError) as refused:
        list_input_files(str(inputs))
    message = str(refused.value)
    assert "3 of its entries would be left out" in message
    assert "x.txt is a link to /etc/hostname, outside the input folder" in message
    assert "sub/all is a link to /, outside the input folder" in message
    assert f"sub/up is a link to {os.path.realpath(tmp_path)}, outside the input folder" in message
