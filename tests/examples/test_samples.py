"""Sample inputs: valid PNGs from pure Python (R reads them), R-written formats, the demo mix."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from azureml_parallel_r.examples.samples import (
    R_SAMPLE_NAMES,
    R_WRITE_SAMPLES,
    make_sample_inputs,
    png_bytes,
    write_png,
)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_header_and_determinism(channels: int) -> None:
    data = png_bytes(7, 5, seed=3, channels=channels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (7, 5)
    assert data == png_bytes(7, 5, seed=3, channels=channels) != png_bytes(7, 5, seed=4, channels=channels)


@pytest.mark.integration
def test_r_reads_the_generated_png(tmp_path: Path) -> None:
    path = write_png(str(tmp_path / "p.png"), 9, 4, channels=4)
    done = subprocess.run(
        ["Rscript", "-e", "cat(dim(png::readPNG(commandArgs(TRUE)[1])))", path], capture_output=True, text=True
    )
    assert done.stdout.split() == ["4", "9", "4"]


@pytest.mark.integration
def test_sample_mix(tmp_path: Path) -> None:
    paths = make_sample_inputs(str(tmp_path), images=4)
    names = sorted(str(Path(p).relative_to(tmp_path)) for p in paths)
    assert names == [
        "camera-a/img_0000.png",
        "camera-a/img_0001.png",
        "camera-b/broken.png",
        "camera-b/img_0000.png",
        "camera-b/img_0001.png",
        "gray scan.png",
        "tables/photo.jpg",
        "tables/table.rds",
        "tables/tables.RData",
    ]
    assert (tmp_path / "tables" / "photo.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.integration
@pytest.mark.parametrize("images", [0, 1])
def test_fewer_images_than_cameras_still_make_the_corrupt_file(tmp_path: Path, images: int) -> None:
    paths = make_sample_inputs(str(tmp_path), images=images)
    assert (tmp_path / "camera-b" / "broken.png").is_file() and len(paths) == images + 5


@pytest.mark.integration
def test_sample_mix_from_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = make_sample_inputs("relative", images=2)
    assert all((tmp_path / "relative" / name).is_file() for name in ("tables/photo.jpg", "tables/table.rds"))
    assert len(paths) == 7


@pytest.mark.integration
@pytest.mark.parametrize(
    "extra", [["--args"], ["--args", "--args"], ["photo.jpg", "table.rds", "tables.RData"]], ids=str
)
def test_the_r_sample_writer_refuses_anything_but_three_absolute_targets(tmp_path: Path, extra: list[str]) -> None:
    """Run by hand with an explicit --args (or relative names), it once wrote a JPEG named '--args' here."""
    targets = [str(tmp_path / "out" / name) for name in R_SAMPLE_NAMES] if extra[0] == "--args" else extra
    done = subprocess.run(
        ["Rscript", "--vanilla", "-e", R_WRITE_SAMPLES, *(extra if extra[0] == "--args" else []), *targets],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "expected three absolute paths ending in photo.jpg" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be written"
