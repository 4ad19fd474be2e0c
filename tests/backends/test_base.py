"""Values that cross the backend interface: plain data in and out, entry arguments, failure summary."""

from __future__ import annotations

import json

from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.models import DatasetRef, RunRef, RunRequest, RunResults, RunState
from azureml_parallel_r.run_settings import ParallelRunSettings

DATASET = DatasetRef("inputs", 3, "r-script-inputs/2026-11-24", 12)


def test_values_round_trip_through_plain_dicts() -> None:
    request = RunRequest(
        dataset=DATASET,
        output_path="out/{run-id}",
        run_key={"dag_id": "d"},
        r_args=["-x"],
        settings=ParallelRunSettings(mini_batch_size=3, allowed_failed_percent=5.0),
    )
    assert RunRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    assert DatasetRef.from_dict({**DATASET.to_dict(), "unknown": 1}) == DATASET
    ref = RunRef("r1", "https://x", "out/r1", "local")
    assert RunRef.from_dict(ref.to_dict()) == ref


def test_entry_arguments_for_the_entry_script() -> None:
    request = RunRequest(
        dataset=DATASET,
        output_path="o",
        run_key={},
        r_script="r/s.r",
        r_args=["--size", "-1"],
        settings=ParallelRunSettings(file_timeout=30),
    )
    assert request.entry_arguments(input_root="/mnt/in") == [
        "--r-script",
        "r/s.r",
        "--r-mode",
        "worker",
        "--file-timeout",
        "30",
        "--input-root",
        "/mnt/in",
        "--r-arg=--size",
        "--r-arg=-1",
    ]


def test_failure_summary_lists_failed_files_with_r_output() -> None:
    results = RunResults(
        RunState("r1", "Failed", "3 files failed, more than error_threshold=1"),
        failures={
            "b.png": {"kind": "r_error", "error": "not a PNG", "attempt": 1, "stderr_tail": "line1\nline2"},
            "a.png": {"kind": "crash", "error": "R crashed", "attempt": 2},
        },
        logs={"job_error.txt": "reason: too many"},
    )
    text = results.failure_summary()
    assert text.splitlines()[0] == "Pipeline run r1 is Failed: 3 files failed, more than error_threshold=1"
    assert "- a.png (crash, attempt 2): R crashed" in text and "- b.png (r_error, attempt 1): not a PNG" in text
    assert "    | line2" in text and "reason: too many" in text


def test_failure_summary_keeps_every_name_error_and_log_line_on_its_own_line() -> None:
    forged = "a.png\nINFO - run Finished"
    results = RunResults(
        RunState("r1", "Failed", "reason"),
        failures={forged: {"kind": "r_error", "error": "no\nINFO - forged error", "stderr_tail": "t\x1b[2K"}},
        logs={"job_error.txt": "reason: file a.png\r\nINFO - forged log"},
    )
    lines = results.failure_summary().splitlines()
    assert not any(line.startswith("INFO") for line in lines), lines
    assert "- 'a.png\\nINFO - run Finished' (r_error, attempt ?): 'no\\nINFO - forged error'" in lines
    assert "    | 't\\x1b[2K'" in lines


class _Backend(ParallelRunBackend):
    """Only describe_failure is exercised: the other abstract methods are never called."""

    def __init__(self, results: RunResults | Exception) -> None:
        self.results = results

    def fetch_results(self, run_id: str, *, failures_only: bool = False) -> RunResults:
        assert failures_only  # a failure summary reads neither the rows nor the names under results/
        if isinstance(self.results, Exception):
            raise self.results
        return self.results


_Backend.__abstractmethods__ = frozenset()


def test_describe_failure_always_says_why_the_wait_ended() -> None:
    running = RunResults(RunState("r1", "Running", "running"))
    # a waiting error on a run that still runs: the error first, not only "is Running"
    lines = _Backend(running).describe_failure("r1", "Airflow connection 'x' is not defined").splitlines()
    assert lines == ["Airflow connection 'x' is not defined", "Pipeline run r1 is Running: running"]
    failed = RunResults(RunState("r1", "Failed", "3 files failed"))
    # the run's own message is not repeated
    assert _Backend(failed).describe_failure("r1", "3 files failed") == "Pipeline run r1 is Failed: 3 files failed"
    unreadable = _Backend(OSError("gone")).describe_failure("r1", "why")
    assert unreadable == "Pipeline run r1 did not finish: why (its results could not be read: OSError: gone)"


def test_prepare_puts_the_connections_packages_first_and_chooses_the_size_only_when_asked(tmp_path) -> None:
    from azureml_parallel_r.backends.local import LocalBackend

    backend = LocalBackend(str(tmp_path), process_count_per_node=2, r_packages=("terra>=1.7",))
    request = RunRequest(
        dataset=DatasetRef("inputs", 1, "r-script-inputs/2026-11-24", 1000),
        output_path="o",
        run_key={},
        r_packages=["jsonlite"],
        settings=ParallelRunSettings(node_count=2, mini_batch_size=7),
    )
    kept = backend.prepare(request)
    assert kept.r_packages == ["terra>=1.7", "jsonlite"] and kept.settings.mini_batch_size == 7
    chosen = backend.prepare(request, choose_mini_batch_size=True)
    assert chosen.settings.mini_batch_size == 25  # 1000 files over 2 x 2 processes, about 10 mini-batches each
    assert request.r_packages == ["jsonlite"], "the request itself is not changed"
