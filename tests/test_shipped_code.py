"""What the engines ship to the compute: a source directory that runs with the standard library alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from azureml_parallel_r.shipped_code import INCLUDE_DIR, stage_source_directory
from tests.conftest import SHIPPED

# What the runtime does with the source directory (it is on sys.path; the entry script is imported from its file),
# in an interpreter without site-packages (-S) or the environment's PYTHONPATH (-I): nothing of the Airflow side or
# of this checkout is importable, only the standard library and what was shipped.
PROBE = """
import importlib.util, json, sys
source = sys.argv[1]
sys.path.insert(0, source)
spec = importlib.util.spec_from_file_location("batch_wrapper", source + "/entry/batch_wrapper.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
loaded = sorted(name for name in sys.modules if name.startswith("azureml_parallel_r"))
print(json.dumps({"loaded": loaded, "from": {name: sys.modules[name].__file__ for name in loaded}}))
"""


@pytest.fixture
def staged() -> Path:
    folder = Path(stage_source_directory())
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_source_directory_holds_exactly_what_the_compute_needs(staged: Path) -> None:
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == SHIPPED


def _compute_python() -> str | None:
    """A Python 3.10 that runs (the compute image's: include/environment/Dockerfile), or None: on PATH, or pyenv's."""
    candidates = [shutil.which("python3.10"), *map(str, Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.strip() == b"(3, 10)":
            return candidate
    return None


COMPUTE_PYTHON = _compute_python()  # the shipped code must import with the compute's Python too


@pytest.mark.parametrize(
    "python",
    [
        pytest.param(sys.executable, id="this-python"),
        pytest.param(
            COMPUTE_PYTHON,
            id="python3.10",
            marks=pytest.mark.skipif(COMPUTE_PYTHON is None, reason="no python3.10 here (the compute image's Python)"),
        ),
    ],
)
def test_the_entry_script_imports_the_shipped_package_with_the_standard_library_alone(staged: Path, python) -> None:
    import json

    done = subprocess.run(
        [python, "-I", "-S", "-c", PROBE, str(staged)], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "azureml_parallel_r.compute.batch" in found["loaded"]
    assert all(path.startswith(str(staged)) for path in found["from"].values()), found["from"]


def test_a_source_directory_without_entry_or_r_is_refused(tmp_path: Path) -> None:
    (tmp_path / "entry").mkdir()
    with pytest.raises(ValueError, match="has no r/ folder"):
        stage_source_directory(str(tmp_path))


def test_the_repository_and_the_wheel_find_include_at_one_place() -> None:
    """``azureml_parallel_r/shipped`` is include/ (a link here, a copy in the wheel: tests/test_packaging.py)."""
    assert (INCLUDE_DIR / "entry" / "batch_wrapper.py").is_file() and (INCLUDE_DIR / "r").is_dir()
