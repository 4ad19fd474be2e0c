"""Which R script a run may use, checked before anything is submitted.

A run's ``r_script`` comes from the DAG or from the trigger form, so it is user input: it resolves only to a
file under the step's source directory (``include/``: relative paths) or under a folder the deployment allows
in the connection's extra ``r_script_dirs`` (absolute paths). Anything else (``/etc/passwd``, ``../../x``, a
link out of those folders) is refused with a message. The script must exist and, where R is installed on the
Airflow worker, parse; a parse error is reported by position and kind only, never with the script's text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence

PARSE_TIMEOUT = 60.0
R_PARSE = "invisible(parse(file = commandArgs(TRUE)[1L], keep.source = FALSE, encoding = 'UTF-8'))"


class RScriptError(ValueError):
    """The R script is not allowed, missing, or does not parse."""


def resolve_r_script(r_script: str, source_directory: str, allowed_dirs: Sequence[str] = ()) -> str:
    """The real path of ``r_script``, or :class:`RScriptError` when it is outside the allowed folders or missing.

    :param r_script: relative to ``source_directory``, or absolute.
    :param source_directory: the step's source directory (holds ``entry/`` and ``r/``).
    :param allowed_dirs: further folders absolute scripts may live in (the connection's ``r_script_dirs``).
    """
    if not r_script or "\0" in r_script:
        raise RScriptError(f"r_script must be a path to an R script, got {r_script!r}")
    roots = [os.path.realpath(source_directory), *(os.path.realpath(d) for d in allowed_dirs)]
    candidate = r_script if os.path.isabs(r_script) else os.path.join(source_directory, r_script)
    real = os.path.realpath(candidate)
    if not any(real == root or real.startswith(os.path.join(root, "")) for root in roots):
        allowed = ", ".join([f"{source_directory} (relative paths)", *allowed_dirs])
        raise RScriptError(
            f"r_script {r_script!r} is not under a folder R scripts may come from ({allowed}); put the script in "
            "the source directory, or add its folder to the connection's extra r_script_dirs"
        )
    if not os.path.isfile(real):
        raise RScriptError(f"r_script {r_script!r} does not exist (looked at {candidate})")
    return real


def check_parses(path: str, rscript: str | None = None) -> bool:
    """Raise :class:`RScriptError` when R cannot parse ``path``; False when no R is installed to ask.

    :param path: the R script.
    :param rscript: the Rscript executable (default: ``Rscript`` on PATH).
    """
    executable = rscript or shutil.which("Rscript")
    if not executable:
        return False
    done = subprocess.run([executable, "--vanilla", "-e", R_PARSE, path], capture_output=True, text=True,
                          timeout=PARSE_TIMEOUT)  # fmt: skip
    if done.returncode != 0:
        raise RScriptError(f"r_script {os.path.basename(path)!r} does not parse: {parse_error_summary(done.stderr)}")
    return True


def parse_error_summary(r_output: str) -> str:
    """R's parse error reduced to where and what (``3:7: unexpected symbol``): R also echoes the offending
    source lines, which must not reach a log (the script may be any file)."""
    for line in r_output.splitlines():
        found = re.search(r":(\d+):(\d+): ((?:unexpected|invalid|malformed)[^\n]{0,40})$", line.strip())
        if found:  # "  /path/x.r:3:7: unexpected symbol" -> "line 3, column 7: unexpected symbol"
            return f"line {found[1]}, column {found[2]}: {found[3]}"
    return "a syntax error (R's message is not shown: it would echo the file)"
