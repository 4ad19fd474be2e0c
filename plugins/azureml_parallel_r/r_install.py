"""Install the R packages an R script declares, on this machine (the local engine's R), the way docs/r-script.md's
``scripts/setup.sh --r-packages SCRIPT`` does:

    python -m azureml_parallel_r.r_install SCRIPT [--package REQ ...] [--repo URL] [--library DIR] [--no-apt]

What is declared (an ``renv.lock`` or ``DESCRIPTION`` next to the script, and ``--package`` requirements: the
connection's or the operator's ``r_packages``) and does not load yet is installed:

1. from Debian, ``r-cran-<name>``, where the package has no exact version asked for, apt knows such a package, and
   this process may install with apt (root, or sudo without a password); Debian's packages are binaries built for
   this R, so this takes seconds;
2. else from a CRAN-like repository (``--repo``, default ``https://cloud.r-project.org``) with R's own
   ``install.packages`` into ``--library`` (default: R's first library this user can write, else R's user
   library, ``R_LIBS_USER``, created). A version that ``renv.lock`` or ``==`` pins is asked of the repository's
   archive (``src/contrib/Archive/<name>/<name>_<version>.tar.gz``) when the current one differs.

Afterwards every declared package is checked the way the R session checks it before any file runs; the command
fails naming what still does not load. Nothing passes through a shell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from azureml_parallel_r.r_scripts import RScriptError, check_packages, declared_packages

DEFAULT_REPO = "https://cloud.r-project.org"
INSTALL_TIMEOUT = 3600.0
# R: install the packages named in JSON text (RPackage dicts; the compute image's build passes the same) from a
# repository into a library; a pinned version that the repository's current one does not match comes from its
# archive. Prints nothing but R's own progress.
R_INSTALL = r"""
# Posit Package Manager serves Linux binaries to a client that names its R and platform (Posit's instructions)
options(HTTPUserAgent = sprintf("R/%s R (%s)", getRversion(),
                                paste(getRversion(), R.version["platform"], R.version["arch"], R.version["os"])))
args <- commandArgs(trailingOnly = TRUE)
wanted <- jsonlite::fromJSON(args[[1L]], simplifyVector = FALSE)
repo <- args[[2L]]
lib <- args[[3L]]
dir.create(lib, recursive = TRUE, showWarnings = FALSE)
.libPaths(c(lib, .libPaths()))
available <- available.packages(repos = repo)
for (p in wanted) {
  current <- if (p$name %in% rownames(available)) available[p$name, "Version"] else NA
  if (!is.null(p$version) && !identical(unname(current), p$version)) {
    url <- sprintf("%s/src/contrib/Archive/%s/%s_%s.tar.gz", repo, p$name, p$name, p$version)
    install.packages(url, repos = NULL, type = "source", lib = lib)
  } else {
    install.packages(p$name, repos = repo, lib = lib, dependencies = c("Depends", "Imports", "LinkingTo"))
  }
}
"""
# R, after session.R's package_problems(): the names of the declared packages (JSON text) that it finds a problem with
R_MISSING_CALL = r"""
for (p in jsonlite::fromJSON(commandArgs(TRUE)[[1L]], simplifyVector = FALSE)) {
  if (length(package_problems(character(), list(p)))) cat(p$name, "\n")
}
"""
R_LIBRARY = r"""
writable <- Filter(function(p) file.access(p, 2L) == 0L, .libPaths())
cat(if (length(writable)) writable[[1L]] else Sys.getenv("R_LIBS_USER"))
"""


def _rscript() -> str:
    found = shutil.which("Rscript")
    if not found:
        raise RScriptError("Rscript is not on PATH: install R first (scripts/setup.sh installs Debian's r-base-core)")
    return found


def default_library(rscript: str) -> str:
    """R's first library this user can write, else R's user library (``R_LIBS_USER``)."""
    done = subprocess.run([rscript, "--vanilla", "-e", R_LIBRARY], capture_output=True, text=True, timeout=60)
    return os.path.expanduser(done.stdout.strip())


def _apt_prefix() -> list[str] | None:
    """How this process may run apt-get: directly as root, through sudo without a password, or not at all."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def debian_package(name: str) -> str | None:
    """Debian's ``r-cran-<name>`` for an R package, when apt knows one (``apt-cache show``)."""
    candidate = "r-cran-" + name.lower()
    if not shutil.which("apt-cache"):
        return None
    shown = subprocess.run(["apt-cache", "show", candidate], capture_output=True, text=True)
    return candidate if shown.returncode == 0 and shown.stdout.strip() else None


def missing(script: str, listed: Sequence[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """The declared packages that do not load with this machine's R (and ``env``'s library), or not at the
    version asked for: judged by session.R's own ``package_problems``, in one R process."""
    from azureml_parallel_r.shipped_code import session_r_function

    declared = [package.to_dict() for package in declared_packages(script, listed)]
    program = session_r_function("package_problems") + R_MISSING_CALL
    done = subprocess.run(
        [_rscript(), "--vanilla", "-e", program, json.dumps(declared)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    names = set(done.stdout.split())
    return [package for package in declared if package["name"] in names]


def install(
    script: str,
    listed: Sequence[str] = (),
    *,
    repo: str = DEFAULT_REPO,
    library: str | None = None,
    use_apt: bool = True,
) -> str:
    """Install what the script declares and does not load yet; return a summary. Raises :class:`RScriptError`
    naming what still does not load afterwards.

    :param script: the R script (its ``renv.lock`` and ``DESCRIPTION`` are next to it).
    :param listed: more requirements (``name``, ``name==version``, ``name>=version``).
    :param repo: the CRAN-like repository (a URL; ``file://`` for a local one).
    :param library: the R library to install into (default: :func:`default_library`).
    :param use_apt: try Debian's ``r-cran-*`` packages first.
    """
    rscript = _rscript()
    library = library or default_library(rscript)
    env = {**os.environ, "R_LIBS": os.pathsep.join(filter(None, [library, os.environ.get("R_LIBS", "")]))}
    wanted = missing(script, listed, env)
    from_debian: list[str] = []
    prefix = _apt_prefix() if use_apt else None
    if prefix is not None:
        for package in wanted:
            debian = None if package["version"] else debian_package(package["name"])
            if debian:
                from_debian.append(debian)
        if from_debian:
            subprocess.run(
                [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *from_debian],
                check=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    rest = [p for p in wanted if "r-cran-" + p["name"].lower() not in from_debian]
    if rest:
        subprocess.run(
            [rscript, "--vanilla", "-e", R_INSTALL, json.dumps(rest), repo, library],
            check=True,
            env=env,
            timeout=INSTALL_TIMEOUT,
        )
    check_packages(os.path.abspath(script), listed, env=env)
    return (
        f"R packages for {script}: {len(from_debian)} from Debian ({' '.join(from_debian) or 'none'}), "
        f"{len(rest)} from {repo} into {library}; all declared packages load"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m azureml_parallel_r.r_install",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("script", help="the R script; its renv.lock and DESCRIPTION are read from its folder")
    parser.add_argument("--package", action="append", default=[], help="name, name==version or name>=version")
    parser.add_argument("--repo", default=os.environ.get("R_REPO", DEFAULT_REPO), help="a CRAN-like repository")
    parser.add_argument("--library", help="the R library to install into (default: R's first writable one)")
    parser.add_argument("--no-apt", action="store_true", help="never use Debian's r-cran-* packages")
    args = parser.parse_args(argv)
    try:
        print(install(args.script, args.package, repo=args.repo, library=args.library, use_apt=not args.no_apt))
    except (RScriptError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
