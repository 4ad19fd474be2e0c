"""Which R script a run may use, checked before anything is submitted.

A run's ``r_script`` comes from the DAG or from the trigger form, so it is user input: it resolves only to a
file under the step's source directory (``include/``: relative paths) or under a folder the deployment allows
in the connection's extra ``r_script_dirs`` (absolute paths). Anything else (``/etc/passwd``, ``../../x``, a
link out of those folders) is refused with a message. The script must exist and, where R is installed on the
Airflow worker, parse; a parse error is reported by position and kind only, never with the script's text.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azureml_parallel_r.compute.r_packages import RPackage

PARSE_TIMEOUT = 60.0
R_PARSE = "invisible(parse(file = commandArgs(TRUE)[1L], keep.source = FALSE, encoding = 'UTF-8'))"


class RScriptError(ValueError):
    """The R script is not allowed, missing or does not parse, or its R packages cannot be read or do not load."""


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
    done = subprocess.run(
        [executable, "--vanilla", "-e", R_PARSE, path], capture_output=True, text=True, timeout=PARSE_TIMEOUT
    )
    if done.returncode != 0:
        raise RScriptError(f"r_script {os.path.basename(path)!r} does not parse: {parse_error_summary(done.stderr)}")
    return True


# R: the packages a script names, from R's own parse data: ``pkg::f`` and ``pkg:::f``, and the first argument of
# library(), require(), requireNamespace() and loadNamespace() (a call with character.only names a variable: skipped)
R_USED_PACKAGES = r"""
pd <- utils::getParseData(parse(commandArgs(TRUE)[[1L]], keep.source = TRUE))
pd <- pd[pd$terminal, ]
pd <- pd[order(pd$line1, pd$col1), ]
used <- pd$text[pd$token == "SYMBOL_PACKAGE"]
for (i in which(pd$token == "SYMBOL_FUNCTION_CALL" & pd$text %in% c("library", "require", "requireNamespace",
                                                                   "loadNamespace"))) {
  depth <- 0L; args <- character()
  for (j in seq.int(i + 1L, length.out = nrow(pd) - i)) {
    token <- pd$token[j]
    if (token == "'('") depth <- depth + 1L
    if (token == "')'") { depth <- depth - 1L; if (depth == 0L) break }
    if (depth == 1L) args <- c(args, if (token %in% c("SYMBOL", "STR_CONST", "SYMBOL_SUB")) pd$text[j])
  }
  if (length(args) && !("character.only" %in% args)) used <- c(used, gsub("^[\"']|[\"']$", "", args[[1L]]))
}
cat(unique(used), sep = "\n")
"""


def used_packages(path: str, rscript: str | None = None) -> list[str]:
    """The packages an R script names (``library(x)``, ``require("x")``, ``x::f``...), read from R's parse data; empty
    when no R is installed to ask.

    :param path: the R script (it parses: see :func:`check_parses`).
    :param rscript: the Rscript executable (default: ``Rscript`` on PATH).
    """
    executable = rscript or shutil.which("Rscript")
    if not executable:
        return []
    done = subprocess.run(
        [executable, "--vanilla", "-e", R_USED_PACKAGES, path], capture_output=True, text=True, timeout=PARSE_TIMEOUT
    )
    if done.returncode != 0:
        raise RScriptError(f"r_script {os.path.basename(path)!r} does not parse: {parse_error_summary(done.stderr)}")
    return [name for name in done.stdout.split() if name]


@functools.lru_cache(maxsize=8)
def r_version(rscript: str | None = None) -> str | None:
    """The version of this machine's R (``4.2.2``), or None when no R is installed to ask.

    :param rscript: the Rscript executable (default: ``Rscript`` on PATH).
    """
    executable = rscript or shutil.which("Rscript")
    if not executable:
        return None
    done = subprocess.run(
        [executable, "--vanilla", "-e", "cat(as.character(getRversion()))"],
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def parse_error_summary(r_output: str) -> str:
    """R's parse error reduced to where and what (``3:7: unexpected symbol``): R also echoes the offending
    source lines, which must not reach a log (the script may be any file)."""
    for line in r_output.splitlines():
        found = re.search(r":(\d+):(\d+): ((?:unexpected|invalid|malformed)[^\n]{0,40})$", line.strip())
        if found:  # "  /path/x.r:3:7: unexpected symbol" -> "line 3, column 7: unexpected symbol"
            return f"line {found[1]}, column {found[2]}: {found[3]}"
    return "a syntax error (R's message is not shown: it would echo the file)"


def declared_packages(path: str, listed: Sequence[str] = ()) -> list[RPackage]:
    """The R packages declared for the script (its ``renv.lock``, ``DESCRIPTION``, and ``listed``), read by the
    entry script's own code (:mod:`azureml_parallel_r.compute.r_packages`); a declaration that cannot be read is an
    :class:`RScriptError` naming it.

    :param path: the R script.
    :param listed: the plain list (the connection's and the operator's ``r_packages``).
    """
    from azureml_parallel_r.compute import r_packages

    try:
        return r_packages.declared_packages(path, listed)
    except r_packages.DeclarationError as exc:
        raise RScriptError(f"the R packages of r_script {os.path.basename(path)!r}: {exc}") from None


def check_packages(
    path: str, listed: Sequence[str] = (), rscript: str | None = None, env: dict[str, str] | None = None
) -> bool:
    """Raise :class:`RScriptError` naming every package the script declares or names that does not load with this
    machine's R (the check the R session makes before any file runs); False when no R is installed to ask.

    :param path: the R script.
    :param listed: the plain list of packages (the connection's and the operator's ``r_packages``).
    :param rscript: the Rscript executable (default: ``Rscript`` on PATH).
    :param env: R's environment (default: this process's), e.g. with ``R_LIBS`` naming another library.
    """
    from azureml_parallel_r.shipped_code import SESSION_R

    packages = [package.to_dict() for package in declared_packages(path, listed)]
    executable = rscript or shutil.which("Rscript")
    if not executable:
        return False
    done = subprocess.run(
        [executable, "--vanilla", str(SESSION_R), "--check-packages", path, json.dumps(packages)],
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT,
        env=env,
    )
    if done.returncode == 3:
        raise RScriptError(f"r_script {os.path.basename(path)!r}: {done.stdout.strip()}")
    if done.returncode != 0:
        raise RScriptError(
            f"r_script {os.path.basename(path)!r}: R could not check its packages: {parse_error_summary(done.stderr)}"
        )
    return True


def requirement_list(value: Any, where: str) -> list[str]:
    """A plain list of R package requirements: a list of strings, or one string of them separated by commas or
    spaces (a connection form's field, a rendered template); None is the empty list.

    :param value: what was given.
    :param where: where it was given, for the error.
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise RScriptError(f"{where} must be a list of strings (name, name==version, name>=version), got {value!r}")
    return list(value)
