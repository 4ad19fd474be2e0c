"""Input files and output folders for the R session's tests: one file per action the behaviour script knows."""

from __future__ import annotations

from pathlib import Path


def input_file(tmp_path: Path, name: str, action: str) -> str:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(action + "\n", encoding="utf-8")
    return str(path)


def output_dir(tmp_path: Path, name: str) -> str:
    path = tmp_path / "out" / name
    path.mkdir(parents=True)
    return str(path)
