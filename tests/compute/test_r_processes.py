"""Every process an R session started ends with it, however it left R's process group; an OOM kill is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from azureml_parallel_r.compute import r_processes
from azureml_parallel_r.compute.r_session import RSession
from tests.conftest import live_processes
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

# a child that leaves R's process group and session, in each of the ways a script can: setsid, a double fork through a
# shell that exits, and both at once from a child R itself started in the background
ESCAPES = {
    "setsid": 'system("APR_MARK={marker}-setsid setsid sleep 1000 &")',
    "double fork": "system(\"sh -c '(APR_MARK={marker}-double sleep 1000 &) &'\")",
    "nested": 'system("sh -c \'setsid sh -c \\"APR_MARK={marker}-nested sleep 1000 &\\" &\' &")',
}


def _script(write_r_script, marker: str, then: str = '"spawned"'):
    lines = "\n".join(f"  {code.format(marker=marker)}" for code in ESCAPES.values())
    return write_r_script(f"process_file <- function(input_path, output_dir, args) {{\n{lines}\n  {then}\n}}\n")


def _files(tmp_path: Path, names: list[str]) -> list[tuple[str, str]]:
    items = []
    for name in names:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        items.append((str(path), str(tmp_path / "out" / name)))
    (tmp_path / "out").mkdir(exist_ok=True)
    return items


@pytest.mark.parametrize("ending", ["the session ends", "the file fails", "R crashes"])
def test_no_descendant_of_r_outlives_its_file_or_its_session(write_r_script, tmp_path: Path, ending: str) -> None:
    """``system("setsid sleep 1000 &")`` and a double fork leave R's process group, so the group kill that stops R
    missed them: they outlived the run."""
    marker = f"apr-escape-{uuid.uuid4().hex[:8]}"
    then = {
        "the session ends": '"spawned"',
        "the file fails": 'stop("after spawning")',
        "R crashes": 'quit(save = "no", status = 3)',
    }[ending]
    session = RSession(str(_script(write_r_script, marker, then)), str(tmp_path / "r.txt"), file_timeout=60)
    try:
        (outcome,) = list(session.process_many(_files(tmp_path, ["a"]), []))
        assert outcome.ok is (ending == "the session ends"), outcome.error
        if ending == "the session ends":  # a file that succeeded: its children live as long as its R session
            wait_until(lambda: len(live_processes(marker)) == len(ESCAPES), timeout=30, what="the escaped children")
    finally:
        session.end()
    assert live_processes(marker) == []


def test_the_marker_alone_ends_what_left_the_group_where_no_cgroup_can_be_made(write_r_script, tmp_path: Path) -> None:
    marker = f"apr-escape-{uuid.uuid4().hex[:8]}"
    session = RSession(str(_script(write_r_script, marker)), str(tmp_path / "r.txt"), file_timeout=60)
    session._processes = r_processes.SessionProcesses(make_cgroup=False)
    try:
        assert [o.ok for o in session.process_many(_files(tmp_path, ["a"]), [])] == [True]
        wait_until(lambda: len(live_processes(marker)) == len(ESCAPES), timeout=30, what="the escaped children")
    finally:
        session.end()
    assert live_processes(marker) == []


def _memory_cgroup() -> Path | None:
    """This process's cgroup v1 memory folder, where a child with a limit can be made (root, a writable hierarchy)."""
    mounts, own = r_processes._mounts(), r_processes._own_cgroups()
    folder = r_processes._folder("memory", mounts, own)
    if folder is None or os.geteuid() != 0:
        return None
    probe = Path(folder, f"apr-probe-{uuid.uuid4().hex[:8]}")
    try:
        probe.mkdir()
    except OSError:
        return None
    probe.rmdir()
    return Path(folder)


SESSION_IN_A_SMALL_CGROUP = """
import json, os, sys
from azureml_parallel_r.compute.r_session import RSession
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as procs:
    procs.write("0")  # this process, and so its R sessions, under the limit
session = RSession(sys.argv[2], sys.argv[3], file_timeout=120)
try:
    outcomes = list(session.process_many([(sys.argv[4], sys.argv[5]), (sys.argv[6], sys.argv[7])], []))
finally:
    session.end()
print(json.dumps([[o.kind, o.error] for o in outcomes]))
"""


def test_an_r_session_killed_for_memory_says_out_of_memory_and_the_limit(write_r_script, tmp_path: Path) -> None:
    """Not "R crashed (killed by signal SIGKILL)". A real OOM kill, under a 300 MiB cgroup limit: the file's
    failure says out of memory, the limit, and how to give R more; the next file runs in a fresh R."""
    parent = _memory_cgroup()
    if parent is None:
        pytest.skip("no writable cgroup v1 memory hierarchy here to set a memory limit in")
    limited = parent / f"apr-test-limit-{uuid.uuid4().hex[:8]}"
    limited.mkdir()
    try:
        (limited / "memory.limit_in_bytes").write_text(str(300 << 20))
        (limited / "memory.memsw.limit_in_bytes").exists() and (limited / "memory.swappiness").write_text("0")
        script = write_r_script(
            "process_file <- function(input_path, output_dir, args) {\n"
            '  if (readLines(input_path, n = 1L) == "big") { x <- numeric(2e8); x[] <- 1; return(sum(x)) }\n'
            '  "small"\n}\n'
        )
        (big, big_out), (small, small_out) = _files(tmp_path, ["big", "small"])
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(SESSION_IN_A_SMALL_CGROUP),
                str(limited),
                str(script),
                str(tmp_path / "r.txt"),
                big,
                big_out,
                small,
                small_out,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        (big_kind, big_error), (small_kind, _) = json.loads(done.stdout.strip().splitlines()[-1])
        assert big_kind == "out_of_memory", big_error
        assert "out of memory: the kernel's OOM killer ended R when it reached its cgroup's memory limit, 300 MiB" in (
            big_error
        )
        assert "a larger VM size" in big_error and "fewer processes per node" in big_error
        assert small_kind == "ok"
    finally:
        os.rmdir(limited)
