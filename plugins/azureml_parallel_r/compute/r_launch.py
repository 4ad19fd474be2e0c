"""Starting the R process of a session: finding Rscript, its environment, the hook it runs before ``exec``, and how
its end reads. Standard library only: this module ships to the compute nodes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from azureml_parallel_r.compute.r_processes import SessionProcesses

R_INSTALL_HINT = (
    "install R and its packages (Debian/Ubuntu: apt-get install r-base-core r-cran-jsonlite "
    "r-cran-png r-cran-jpeg) or pass --rscript /path/to/Rscript"
)


class RSetupError(RuntimeError):
    """R cannot start or the R script cannot be loaded; raised before any file is processed."""


def find_rscript(rscript: str = "Rscript") -> str:
    """Return the absolute path of Rscript or raise :class:`RSetupError` saying how to install it.

    :param rscript: a command name looked up on PATH, or a path.
    """
    found = shutil.which(rscript)
    if found is None:
        raise RSetupError(f"Rscript not found ({rscript!r} is not on PATH or not executable): {R_INSTALL_HINT}")
    return found


def launch_hook(processes: SessionProcesses | None = None) -> Any:
    """Return a pre-exec hook that puts R in its own process group (and the session's cgroup, where it has one) and
    kills it if its parent dies."""
    libc = None
    if os.uname().sysname == "Linux":
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded (find_library forks ldconfig)

    def preexec() -> None:
        os.setpgid(0, 0)
        if processes is not None:
            processes.join()
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the entry-script process

    return preexec


def describe_exit(returncode: int | None) -> str:
    """How R ended, from its exit status: a signal that killed it, or the status it exited with."""
    if returncode is None:
        return "R stopped answering"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"R crashed (killed by signal {signal.Signals(-returncode).name})"
        return f"R crashed (killed by signal {-returncode})"
    return f"R exited with status {returncode} while processing the file (quit() or a fatal error?)"


def r_environment(env: Mapping[str, str]) -> dict[str, str]:
    """R's environment: ``env`` with a UTF-8 locale when it has none (file names are UTF-8 on the wire).

    :param env: the environment R would inherit.
    """
    env = dict(env)
    locale = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if "utf-8" not in locale.lower() and "utf8" not in locale.lower():
        env.pop("LC_ALL", None)
        env["LC_CTYPE"] = env["LANG"] = "C.UTF-8"
    return env
