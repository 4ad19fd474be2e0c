"""What every engine ships to the compute: the step's source directory, its entry script, and the compute image's
Dockerfile.

The source directory the compute gets holds ``entry/`` (the entry script) and ``r/`` (the R files), which a user
reads and edits in ``include/``, and the package ``azureml_parallel_r/compute/`` (with the package's ``__init__``, its
version and nothing else of the Airflow side), which the entry script imports by name: the runtime has the source
directory on ``sys.path`` (the local engine does the same, ``azureml_parallel_r.engine.entry_host``).

``include/`` is found at one place, ``azureml_parallel_r/shipped``: a link to ``include/`` in the repository, and
its copy in an installed wheel (pyproject.toml).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import azureml_parallel_r

PACKAGE_DIR = Path(azureml_parallel_r.__file__).resolve().parent
INCLUDE_DIR = (PACKAGE_DIR / "shipped").resolve()  # include/: entry/, r/, environment/
ENTRY_SCRIPT = "entry/batch_wrapper.py"
SHIPPED_FOLDERS = ("entry", "r")
COMPUTE_PACKAGE = "compute"  # azureml_parallel_r.compute
COMPUTE_DOCKERFILE = INCLUDE_DIR / "environment" / "Dockerfile"
SESSION_R = PACKAGE_DIR / COMPUTE_PACKAGE / "session.R"  # the R side of the R session
_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def session_r_function(name: str) -> str:
    """The R source of one top-level function of ``compute/session.R`` (``package_problems``), for R programs
    that must judge the same way the R session does where session.R itself is not at hand (a compute image's
    build, which has no build context on SDK v1). The function starts at ``<name> <- function(`` in the first column
    and ends at the first ``}`` alone in the first column.

    :param name: the function's name.
    """
    text = SESSION_R.read_text(encoding="utf-8")
    start = text.index(f"\n{name} <- function(") + 1
    return text[start : text.index("\n}\n", start) + 3]


def stage_source_directory(source_directory: str = str(INCLUDE_DIR)) -> str:
    """Copy only what the compute needs into a new temporary folder: ``entry/`` and ``r/`` of ``source_directory``
    and the package ``azureml_parallel_r/compute/`` (no caches); the caller removes it. The same files give the same
    folder content, so an Azure ML snapshot or code asset of unchanged code hashes the same.

    :param source_directory: the folder holding ``entry/`` and ``r/``.
    """
    staged = tempfile.mkdtemp(prefix="azureml-parallel-r-src-")
    for folder in SHIPPED_FOLDERS:
        origin = Path(source_directory) / folder
        if not origin.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
            raise ValueError(f"source directory {source_directory} has no {folder}/ folder")
        shutil.copytree(origin, Path(staged) / folder, ignore=_COPIED)
    package = Path(staged) / PACKAGE_DIR.name
    shutil.copytree(PACKAGE_DIR / COMPUTE_PACKAGE, package / COMPUTE_PACKAGE, ignore=_COPIED)
    shutil.copy2(PACKAGE_DIR / "__init__.py", package / "__init__.py")
    return staged
