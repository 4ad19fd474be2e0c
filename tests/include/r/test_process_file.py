"""The example R script also runs on its own: Rscript process_file.r --input FILE --output-dir DIR."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from azureml_parallel_r.examples.samples import write_png
from tests.conftest import EXAMPLE_R_SCRIPT

pytestmark = pytest.mark.integration


def _standalone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["Rscript", str(EXAMPLE_R_SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_standalone_run_on_one_image(tmp_path: Path) -> None:
    image = write_png(str(tmp_path / "my photo.png"), 40, 20, channels=4)
    done = _standalone("--input", image, "--output-dir", str(tmp_path / "out"), "--thumbnail-size", "10")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"kind": "image", "width": 40, "height": 20, "channels": 4}
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert [c["channel"] for c in stats["per_channel"]] == ["red", "green", "blue", "alpha"]
    assert (tmp_path / "out" / "thumbnail.png").read_bytes()[:4] == b"\x89PNG"


def test_standalone_run_reports_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    done = _standalone("--input", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "out"))
    assert done.returncode != 0
    assert "unsupported file type 'csv'" in done.stderr and "data.csv" in done.stderr


def test_standalone_usage_message() -> None:
    done = _standalone("--input", "x.png")
    assert done.returncode != 0 and "usage: Rscript process_file.r --input FILE --output-dir DIR" in done.stderr
