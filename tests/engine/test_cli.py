"""python -m azureml_parallel_r.engine: flags named after ParallelRunConfig, exit codes, summary line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_R_SCRIPT, INCLUDE


def _engine(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azureml_parallel_r.engine", *args], capture_output=True, text=True, timeout=timeout
    )


def _job_args(inputs: Path, output: Path, source: Path, entry: str) -> list[str]:
    return ["--input", str(inputs), "--output", str(output), "--source-dir", str(source), "--entry-script", entry]


def test_finished_job_exits_zero_with_a_summary(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    inputs = write_inputs({"a": "ok", "b": "ok", "c": "ok"})
    done = _engine(
        "run",
        *_job_args(inputs, tmp_path / "out", tiny_entry, "tiny_entry.py"),
        "--mini-batch-size",
        "2",
        "--process-count-per-node",
        "2",
        "--run-max-try",
        "1",
        "--",
        "--events",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Finished: 3/3 files succeeded, 0 failed; 2/2 mini-batches done")
    assert sorted((tmp_path / "out" / "parallel_run_step.txt").read_text().split()) == ["a", "b", "c"]


def test_failed_job_exits_non_zero_and_says_why(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    inputs = write_inputs({"a": "raise", "b": "ok"})
    done = _engine(
        "run",
        *_job_args(inputs, tmp_path / "out", tiny_entry, "tiny_entry.py"),
        "--mini-batch-size",
        "1",
        "--run-max-try",
        "1",
        "--error-threshold",
        "0",
        "--",
        "--events",
        str(tmp_path),
    )
    assert done.returncode == 1
    assert "Failed:" in done.stderr and "more than error_threshold=0" in done.stderr


@pytest.mark.integration
def test_r_batch_through_the_cli(tmp_path: Path) -> None:
    from azureml_parallel_r.samples import write_png

    inputs = tmp_path / "in"
    for i in range(5):
        write_png(str(inputs / f"d{i % 2}" / f"p{i}.png"), 16, 16, seed=i)
    done = _engine(
        "run",
        *_job_args(inputs, tmp_path / "out", INCLUDE, "entry/batch_wrapper.py"),
        "--mini-batch-size",
        "2",
        "--process-count-per-node",
        "2",
        "--",
        "--r-script",
        str(EXAMPLE_R_SCRIPT),
        "--input-root",
        str(inputs),
        "--r-arg=--thumbnail-size",
        "--r-arg=4",
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(r) for r in (tmp_path / "out" / "parallel_run_step.txt").read_text().splitlines()]
    assert sorted(r["relative_path"] for r in rows) == ["d0/p0.png", "d0/p2.png", "d0/p4.png", "d1/p1.png", "d1/p3.png"]
    assert (tmp_path / "out" / "results" / "d1" / "p3.png" / "thumbnail.png").is_file()


def test_start_status_and_cancel_subcommands(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    inputs = write_inputs({"a": "sleep"})
    started = _engine(
        "start", *_job_args(inputs, tmp_path / "out", tiny_entry, "tiny_entry.py"), "--", "--events", str(tmp_path)
    )
    assert started.returncode == 0, started.stderr
    logs_dir = json.loads(started.stdout)["logs_dir"]
    assert json.loads(_engine("status", logs_dir).stdout)["status"] in {"NotStarted", "Running"}
    assert json.loads(_engine("cancel", logs_dir).stdout)["status"] == "Canceled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mini-batch-size", "0"], "mini_batch_size must be >= 1"),
        (["--env", "NOEQUALS"], "--env takes NAME=VALUE"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, tiny_entry: Path, args: list[str], message: str) -> None:
    done = _engine("run", *_job_args(tmp_path, tmp_path / "out", tiny_entry, "tiny_entry.py"), *args)
    assert done.returncode == 2 and message in done.stderr


def test_missing_entry_script_exits_2(tmp_path: Path) -> None:
    done = _engine("run", *_job_args(tmp_path, tmp_path / "out", tmp_path, "nope.py"))
    assert done.returncode == 2 and "entry script not found" in done.stderr
