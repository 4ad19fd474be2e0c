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
    from azureml_parallel_r.examples.samples import write_png

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
        (["--mini-batch-size", "10MB"], "for a file input is a number of files"),
        (["--partition-format", "{user}/{x}.wav"], "--partition-format is for a file input with --partition-keys"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, tiny_entry: Path, args: list[str], message: str) -> None:
    done = _engine("run", *_job_args(tmp_path, tmp_path / "out", tiny_entry, "tiny_entry.py"), *args)
    assert done.returncode == 2 and message in done.stderr


def test_a_tables_mini_batch_size_is_a_data_size(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    inputs = write_inputs(
        {"MLTable": "paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited: {}", "t.csv": "a"}
    )
    args = ["run", "--input", str(inputs), "--output", str(tmp_path / "out"), "--entry-script", str(tiny_entry)]
    done = _engine(*args, "--mini-batch-size", "10 pages")
    assert done.returncode == 2 and "approximate data size, like 1024 (bytes), 100 kb, 10MB or 1GB" in done.stderr


def test_an_explicit_invocation_timeout_runs_whatever_the_per_file_limit(
    tmp_path: Path, tiny_entry: Path, write_inputs
) -> None:
    """``--run-invocation-timeout 120`` was refused even with the entry script's ``--file-timeout 5``; any value above
    0 runs, and a per-file limit that cannot fit inside it is a warning that says what will happen."""
    inputs = write_inputs({"a": "ok", "b": "ok"})
    quiet = _tiny_run(tmp_path, tiny_entry, inputs, tmp_path / "out1", "--run-invocation-timeout", "120")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr
    fitted = _tiny_run(
        tmp_path, tiny_entry, inputs, tmp_path / "out2", "--run-invocation-timeout", "120", "--file-timeout", "5"
    )
    assert fitted.returncode == 0 and "warning" not in fitted.stderr, fitted.stderr
    slow = _tiny_run(
        tmp_path, tiny_entry, inputs, tmp_path / "out3", "--run-invocation-timeout", "60", "--file-timeout", "300"
    )
    assert slow.returncode == 0, slow.stderr
    assert "warning: file_timeout=300 s does not fit inside run_invocation_timeout=60 s" in slow.stderr


def test_missing_entry_script_exits_2(tmp_path: Path) -> None:
    done = _engine("run", *_job_args(tmp_path, tmp_path / "out", tmp_path, "nope.py"))
    assert done.returncode == 2 and "entry script not found" in done.stderr


def _tiny_run(tmp_path: Path, tiny_entry: Path, inputs: Path, output: Path, *extra: str):
    return _engine(
        "run", *_job_args(inputs, output, tiny_entry, "tiny_entry.py"), *extra, "--", "--events", str(tmp_path)
    )


def test_an_output_folder_that_holds_a_run_is_refused(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    """A second run into a finished run's folder would overwrite its rows: exit 2, one clear line."""
    inputs = write_inputs({"a": "ok"})
    assert _tiny_run(tmp_path, tiny_entry, inputs, tmp_path / "out").returncode == 0
    rows_before = (tmp_path / "out" / "parallel_run_step.txt").read_text()
    again = _tiny_run(tmp_path, tiny_entry, inputs, tmp_path / "out")
    assert again.returncode == 2 and "already holds a run" in again.stderr and "Traceback" not in again.stderr
    assert (tmp_path / "out" / "parallel_run_step.txt").read_text() == rows_before
    # outputs without logs (an Azure-style output folder): refused too
    (tmp_path / "other" / "results").mkdir(parents=True)
    other = _tiny_run(tmp_path, tiny_entry, inputs, tmp_path / "other")
    assert other.returncode == 2 and "already holds a run's outputs (results)" in other.stderr


@pytest.mark.parametrize(
    ("make_output", "message"),
    [
        (lambda inputs, tmp: inputs / "out", "is inside the input folder"),
        (lambda inputs, tmp: (tmp / "file").write_text("x") and tmp / "file", "exists and is not a folder"),
    ],
    ids=["inside-input", "not-a-folder"],
)
def test_bad_output_paths_are_one_clear_line(
    tmp_path: Path, tiny_entry: Path, write_inputs, make_output, message: str
) -> None:
    inputs = write_inputs({"a": "ok"})
    done = _tiny_run(tmp_path, tiny_entry, inputs, make_output(inputs, tmp_path))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_read_only_output_folder_is_refused(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    import os

    if os.geteuid() == 0:  # root writes anywhere: check with a folder under a file system path root cannot write
        output = Path("/proc/azureml-parallel-r-out")
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        output = tmp_path / "ro" / "out"
    done = _tiny_run(tmp_path, tiny_entry, write_inputs({"a": "ok"}), output)
    assert done.returncode == 2 and "cannot be written" in done.stderr


@pytest.mark.parametrize("name", ["..", ".", "a/b.txt", "", "x\\y"])
def test_the_rows_file_name_must_stay_in_the_output_folder(tmp_path: Path, tiny_entry, write_inputs, name) -> None:
    done = _tiny_run(tmp_path, tiny_entry, write_inputs({"a": "ok"}), tmp_path / "out", "--append-row-file-name", name)
    assert done.returncode == 2 and "append_row_file_name must be a plain file name" in done.stderr


def test_a_folder_link_loop_lists_each_file_once(tmp_path: Path, tiny_entry: Path, write_inputs) -> None:
    inputs = write_inputs({"a": "ok", "sub/b": "ok"})
    (inputs / "sub" / "loop").symlink_to(inputs, target_is_directory=True)
    (inputs / "again").symlink_to(inputs / "sub", target_is_directory=True)
    done = _tiny_run(tmp_path, tiny_entry, inputs, tmp_path / "out", "--run-max-try", "1")
    assert done.returncode == 0, done.stderr
    assert sorted((tmp_path / "out" / "parallel_run_step.txt").read_text().split()) == ["a", "b"]


@pytest.mark.integration
def test_the_entry_script_files_outputs_under_the_cli_input_by_default(tmp_path: Path, write_inputs) -> None:
    """Without --input-root, the engine's --input is the dataset root, as the runtime exposes a mount."""
    from azureml_parallel_r.examples.samples import write_png

    inputs = tmp_path / "in"
    write_png(str(inputs / "cam" / "p.png"))
    done = _engine(
        "run",
        *_job_args(inputs, tmp_path / "out", INCLUDE, "entry/batch_wrapper.py"),
        "--process-count-per-node",
        "1",
        "--",
        "--r-script",
        str(EXAMPLE_R_SCRIPT),
    )
    assert done.returncode == 0, done.stderr
    (row,) = (tmp_path / "out" / "parallel_run_step.txt").read_text().splitlines()
    assert json.loads(row)["relative_path"] == "cam/p.png"
    assert (tmp_path / "out" / "results" / "cam" / "p.png" / "stats.json").is_file()
