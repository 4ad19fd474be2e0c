"""What every engine ships to the compute: the step's source directory (``include/``), its entry script, and the
compute image's Dockerfile. ``include/entry`` and ``include/r`` are the whole source directory; nothing of
``plugins/`` goes with them.

In this repository they are ``include/``; an installed distribution carries the same files as package data,
``azureml_parallel_r/shipped/`` (pyproject.toml, ``force-include``), and that folder is the source directory then.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PACKAGED_DIR = Path(__file__).resolve().parents[1] / "shipped"  # an installed wheel's copy of include/
REPOSITORY_DIR = Path(__file__).resolve().parents[3] / "include"  # this checkout's include/
INCLUDE_DIR = PACKAGED_DIR if (PACKAGED_DIR / "entry").is_dir() else REPOSITORY_DIR
ENTRY_SCRIPT = "entry/batch_wrapper.py"
SHIPPED_FOLDERS = ("entry", "r")
COMPUTE_DOCKERFILE = INCLUDE_DIR / "environment" / "Dockerfile"
SESSION_R = INCLUDE_DIR / "r" / "session.R"


def session_r_function(name: str) -> str:
    """The R source of one top-level function of ``include/r/session.R`` (``package_problems``), for R programs
    that must judge the same way the R session does where session.R itself is not at hand (a compute image's
    build, which has no build context on SDK v1). The function starts at ``<name> <- function(`` in the first column
    and ends at the first ``}`` alone in the first column.

    :param name: the function's name.
    """
    text = SESSION_R.read_text(encoding="utf-8")
    start = text.index(f"\n{name} <- function(") + 1
    return text[start : text.index("\n}\n", start) + 3]


def entry_module(name: str) -> ModuleType:
    """A standard-library module of the shipped entry code (``include/entry/<name>.py``), for the one job both sides
    do the same way (reading an R script's package declarations): loaded from the shipped file, so the Airflow side
    and the compute read them with the same code, and nothing of ``plugins/`` is shipped.

    :param name: the module's name (``r_packages``).
    """
    qualified = f"azureml_parallel_r._shipped_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, INCLUDE_DIR / "entry" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[qualified]


def stage_source_directory(source_directory: str = str(INCLUDE_DIR)) -> str:
    """Copy only what the compute needs (``entry/`` and ``r/``, no caches) into a new temporary folder; the
    caller removes it. The same files give the same folder content, so an Azure ML snapshot or code asset of
    unchanged code hashes the same.

    :param source_directory: the folder holding ``entry/`` and ``r/``.
    """
    staged = tempfile.mkdtemp(prefix="azureml-parallel-r-src-")
    for folder in SHIPPED_FOLDERS:
        origin = Path(source_directory) / folder
        if not origin.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
            raise ValueError(f"source directory {source_directory} has no {folder}/ folder")
        shutil.copytree(origin, Path(staged) / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    return staged
