"""Every process an R session started, and what ended it: found, killed and told apart from an out-of-memory kill.

A child that R starts may leave R's process group (``system("setsid sleep 1000 &")``, a double fork) and so escape
the group kill that stops R. Two nets catch every descendant:

- a **marker** in the environment (``AZUREML_PARALLEL_R_SESSION=<id>``), which every process R starts inherits
  (unless it clears its environment): the processes that carry it are found in ``/proc``;
- a **cgroup** of the session's own, where one can be made (cgroup v1's memory hierarchy with ``use_hierarchy``, or
  cgroup v2): R is moved into it before it runs, so everything it starts is in it whatever it does, and ending the
  session empties it (``cgroup.kill`` on v2, else each process in ``cgroup.procs``).

The same cgroup tells an out-of-memory kill from any other ``SIGKILL``: the kernel counts the processes its OOM
killer ends (``oom_kill`` in v1's ``memory.oom_control`` of the session's cgroup, or in v2's ``memory.events`` of the
process's cgroup), and the limit that applied is the lowest ``memory.limit_in_bytes``/``memory.max`` on the way up.
Where no cgroup can be read (none mounted, not permitted), the marker still ends every process that kept it, and
an OOM kill reads as the crash it looks like. Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid

MARKER = "AZUREML_PARALLEL_R_SESSION"
CGROUP_PREFIX = "azureml-parallel-r-"
KILL_ROUNDS = 20  # a process may fork while the set is being killed: look again until none is left
UNLIMITED = 1 << 60  # a limit at or above this is no limit (v1 writes 9223372036854771712)


def _mounts() -> dict[str, tuple[str, str]]:
    """The cgroup hierarchies this process can reach: ``"v2"`` and ``"memory"`` (v1) -> (mount root, mount point)."""
    found: dict[str, tuple[str, str]] = {}
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if " - " not in line:
                continue
            fstype, _source, options = line.split(" - ", 1)[1].split()[:3]
            if fstype == "cgroup2":
                found.setdefault("v2", (fields[3], fields[4]))
            elif fstype == "cgroup" and "memory" in options.split(","):
                found.setdefault("memory", (fields[3], fields[4]))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per hierarchy (``"v2"``, ``"memory"``), from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                paths["v2"] = path
            elif "memory" in controllers.split(","):
                paths["memory"] = path
    return paths


def _folder(kind: str, mounts: dict[str, tuple[str, str]], own: dict[str, str]) -> str | None:
    """The folder of this process's cgroup in hierarchy ``kind``, where it is mounted and visible."""
    if kind not in mounts or kind not in own:
        return None
    root, point = mounts[kind]
    path = own[kind]
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None
    relative = path[len(root) :] if root != "/" else path
    folder = os.path.join(point, relative.lstrip("/"))
    return folder if os.path.isdir(folder) else None


def _read_counter(path: str, name: str) -> int | None:
    """A ``name value`` line of a cgroup file (``oom_kill 3``), or None."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == name:
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _read_number(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return None if text in ("", "max") else int(text) if text.isdigit() else None


class SessionProcesses:
    """The processes of one R session (R restarted any number of times), and its cgroup when one can be made.

    :param make_cgroup: try to make a cgroup for the session (False: the marker alone).
    """

    def __init__(self, make_cgroup: bool = True) -> None:
        self.marker = f"{os.getpid()}-{uuid.uuid4().hex}"
        self.cgroup: str | None = None  # the session's own cgroup folder
        self._version = ""  # "v1" (memory hierarchy) or "v2"
        self._parent: str | None = None  # where the limit and, on v2, the OOM count are read from
        self._oom_seen = 0
        if make_cgroup:
            self._make_cgroup()
        self._oom_seen = self.oom_kills() or 0

    def _make_cgroup(self) -> None:
        mounts, own = _mounts(), _own_cgroups()
        for kind in ("memory", "v2"):
            parent = _folder(kind, mounts, own)
            if parent is None or (kind == "memory" and _read_number(os.path.join(parent, "memory.use_hierarchy")) != 1):
                continue  # v1 without use_hierarchy: a child cgroup would not be held to the parent's limit
            _remove_stale(parent)
            folder = os.path.join(parent, f"{CGROUP_PREFIX}{self.marker}")
            try:
                os.mkdir(folder)
            except OSError:
                continue  # not permitted here (a container's read-only cgroup file system)
            self.cgroup, self._version, self._parent = folder, "v1" if kind == "memory" else "v2", parent
            return
        memory_parent = _folder("v2", mounts, own)  # no cgroup of our own: the OOM count of the one we are in
        if memory_parent and os.path.exists(os.path.join(memory_parent, "memory.events")):
            self._version, self._parent = "v2", memory_parent

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with the session's marker, for R (everything R starts inherits it)."""
        return {**env, MARKER: self.marker}

    def join(self) -> None:
        """In R's process, before it runs R (a pre-exec hook): move it into the session's cgroup. Async-signal-safe
        enough for a forked child: one open and write, nothing allocated by Python beyond the call."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                fd = os.open(os.path.join(self.cgroup, "cgroup.procs"), os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)

    def kill_all(self) -> int:
        """End every process of the session: the cgroup's and every process that carries the marker (never this
        one). Returns how many were signalled."""
        killed = 0
        for _round in range(KILL_ROUNDS):
            pids = self._members() - {os.getpid()}
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            if self.cgroup is not None and self._version == "v2":
                with contextlib.suppress(OSError), open(os.path.join(self.cgroup, "cgroup.kill"), "w") as handle:
                    handle.write("1")
        return killed

    def _members(self) -> set[int]:
        """The live processes (zombies left out) in the session's cgroup or carrying its marker."""
        pids: set[int] = set()
        if self.cgroup is not None:
            with contextlib.suppress(OSError), open(os.path.join(self.cgroup, "cgroup.procs"), encoding="ascii") as f:
                pids.update(int(line) for line in f if line.strip())
        needle = f"{MARKER}={self.marker}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if needle in handle.read():
                        pids.add(int(entry))
            except OSError:
                continue
        return {pid for pid in pids if not _zombie(pid)}

    def oom_kills(self) -> int | None:
        """How many processes the kernel's OOM killer has ended where this session's count is kept (the session's
        cgroup on v1; on v2 the cgroup this process is in, descendants included), or None where it cannot be read."""
        if self._version == "v1" and self.cgroup is not None:
            return _read_counter(os.path.join(self.cgroup, "memory.oom_control"), "oom_kill")
        if self._version == "v2" and self._parent is not None:
            return _read_counter(os.path.join(self._parent, "memory.events"), "oom_kill")
        return None

    def mark(self) -> None:
        """Count OOM kills from now on (a new R starts): earlier ones, another process's among them, are not R's."""
        self._oom_seen = self.oom_kills() or 0

    def out_of_memory(self) -> str | None:
        """When the OOM killer ended a process of the session since the last call: a sentence that says so, with the
        memory limit that applied; else None."""
        count = self.oom_kills()
        if count is None or count <= self._oom_seen:
            return None
        self._oom_seen = count
        limit = self.memory_limit()
        where = f"its cgroup's memory limit, {_mib(limit)}" if limit else f"the machine's memory, {_mib(_memory())}"
        return (
            f"out of memory: the kernel's OOM killer ended R when it reached {where}. Give R more memory: a larger "
            "VM size for the compute, or fewer processes per node (process_count_per_node)"
        )

    def memory_limit(self) -> int | None:
        """The lowest memory limit of the cgroups above the session (None: none set)."""
        if self._parent is None:
            return None
        name = "memory.limit_in_bytes" if self._version == "v1" else "memory.max"
        limits = []
        folder = self.cgroup or self._parent
        top = _mounts().get("memory" if self._version == "v1" else "v2", ("/", "/"))[1]
        while folder.startswith(top):
            value = _read_number(os.path.join(folder, name))
            if value is not None and value < UNLIMITED:
                limits.append(value)
            if folder == top:
                break
            folder = os.path.dirname(folder)
        return min(limits) if limits else None

    def close(self) -> None:
        """End the session's processes and remove its cgroup."""
        self.kill_all()
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)
            self.cgroup = None


def _remove_stale(parent: str) -> None:
    """Remove the empty cgroups of sessions whose process is gone (a worker killed before it could remove its own)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            if not name.startswith(CGROUP_PREFIX):
                continue
            pid = name[len(CGROUP_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                with contextlib.suppress(OSError):  # not empty (still in use), or not ours to remove
                    os.rmdir(os.path.join(parent, name))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True  # gone


def _memory() -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def _mib(size: int | None) -> str:
    return f"{size / (1 << 20):.0f} MiB" if size else "an unknown size"
