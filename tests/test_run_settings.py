"""ParallelRunConfig-like settings: Azure's defaults and clear range errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azureml_parallel_r.compute.entry_settings import invocation_margin
from azureml_parallel_r.compute.records import RESERVED_OUTPUT_NAMES
from azureml_parallel_r.run_settings import MAX_INVOCATION_TIMEOUT, ParallelRunSettings, fitted_file_timeout


def test_defaults_follow_parallel_run_config() -> None:
    s = ParallelRunSettings()
    assert (s.mini_batch_size, s.run_max_try, s.file_timeout) == (10, 3, 300)
    # unset, run_invocation_timeout is derived from the per-file limit so that a hung file fails alone
    assert s.run_invocation_timeout is None and s.invocation_timeout == 10 * 300 + 60
    assert ParallelRunSettings(file_timeout=0).invocation_timeout == 60  # the runtime's default
    assert ParallelRunSettings(file_timeout=None, run_invocation_timeout=5).invocation_timeout == 5
    assert s.append_row_file_name == "parallel_run_step.txt" and s.output_action == "append_row"
    assert s.worker_count == s.processes_per_node >= 1


def test_worker_count_is_nodes_times_processes() -> None:
    assert ParallelRunSettings(node_count=3, process_count_per_node=2).worker_count == 6


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mini_batch_size", 0, "mini_batch_size must be >= 1"),
        ("node_count", 0, "node_count must be >= 1"),
        ("process_count_per_node", 0, "process_count_per_node must be >= 1"),
        ("error_threshold", -2, r"error_threshold must be -1 \(ignore\) or >= 0"),
        ("allowed_failed_count", -5, "allowed_failed_count must be"),
        ("allowed_failed_percent", 101, r"allowed_failed_percent must be within \[0, 100\]"),
        ("run_invocation_timeout", 0, "run_invocation_timeout must be > 0"),
        ("run_max_try", 0, "run_max_try must be >= 1"),
        ("output_action", "append", "output_action must be one of append_row, summary_only"),
        ("append_row_file_name", "a/b.txt", "append_row_file_name must be a plain file name"),
        ("file_timeout", -1, r"file_timeout must be >= 0 seconds \(0: no limit\)"),
    ],
)
def test_out_of_range_settings_are_rejected(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParallelRunSettings(**{field: value})


def test_round_trip_through_a_dict() -> None:
    s = ParallelRunSettings(mini_batch_size=3, allowed_failed_percent=12.5, environment_variables={"A": "1"})
    assert ParallelRunSettings.from_dict(s.to_dict()) == s


@settings(max_examples=400, deadline=None)
@given(
    timeout=st.floats(min_value=0.001, max_value=MAX_INVOCATION_TIMEOUT),
    size=st.integers(1, 10_000),
    file_timeout=st.none() | st.floats(min_value=0, max_value=10 * MAX_INVOCATION_TIMEOUT),
)
def test_any_invocation_timeout_azure_accepts_is_accepted_and_the_per_file_limit_fits_inside_it(
    timeout: float, size: int, file_timeout: float | None
) -> None:
    """A settings refactor refused Azure's own default (60 s) for any mini-batch, and the engine CLI refused
    --run-invocation-timeout 120 with the entry script's --file-timeout 5. Whatever the mini-batch size and the
    per-file limit: accepted, in force as given; without a per-file limit one is fitted inside it; an explicit one
    that cannot fit is a warning saying what will happen, never a refusal."""
    given_settings = ParallelRunSettings.from_given(
        run_invocation_timeout=timeout, mini_batch_size=size, file_timeout=file_timeout
    )
    assert given_settings.invocation_timeout == timeout
    if file_timeout is None:
        fitted = given_settings.file_timeout
        assert fitted is not None and 0 < fitted <= max(timeout / 2, timeout - invocation_margin(timeout))
        assert given_settings.warnings() == []
    elif file_timeout and file_timeout > fitted_file_timeout(timeout):
        (warning,) = given_settings.warnings()
        assert f"file_timeout={file_timeout:g} s does not fit inside run_invocation_timeout={timeout:g} s" in warning
        assert "fails with kind invocation_timeout" in warning and "keep their results" in warning
    else:
        assert given_settings.warnings() == []


def test_azures_default_invocation_timeout_runs_any_mini_batch_with_a_fitted_per_file_limit() -> None:
    s = ParallelRunSettings.from_given(run_invocation_timeout=60, mini_batch_size=10)
    assert (s.invocation_timeout, s.file_timeout, s.warnings()) == (60, 54, [])
    assert ParallelRunSettings(run_invocation_timeout=30, file_timeout=0).invocation_timeout == 30


def test_the_derived_invocation_timeout_stays_within_what_the_v2_job_accepts() -> None:
    assert ParallelRunSettings(mini_batch_size=10_000).invocation_timeout == MAX_INVOCATION_TIMEOUT


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_the_logging_levels_are_azures(level: str) -> None:
    assert ParallelRunSettings(logging_level=level).logging_level == level
    with pytest.raises(ValueError, match="logging_level must be one of DEBUG, INFO, WARNING"):
        ParallelRunSettings(logging_level="TRACE")


def test_the_rows_file_is_named_as_the_runtime_writes_it() -> None:
    assert ParallelRunSettings(append_row_file_name="Rows_2026.TXT").rows_file_name == "rows_2026.txt"


@pytest.mark.parametrize("name", [case(name) for name in RESERVED_OUTPUT_NAMES for case in (str, str.upper, str.title)])
def test_a_rows_file_named_as_a_part_of_the_output_folder_is_refused(name: str) -> None:
    """The rows would land inside results/ or logs/, or overwrite validation.json or be overwritten by
    validation-failures.jsonl (whose rows a retried validation then counted as succeeded files), in any case (the
    runtime lower-cases the name)."""
    with pytest.raises(ValueError, match=f"append_row_file_name '{re.escape(name)}' is a name the run's output folder"):
        ParallelRunSettings(append_row_file_name=name)


def test_every_name_a_run_and_its_validation_write_is_reserved() -> None:
    """Derived from where the names are declared: what the run writes (its folders), what validation writes, and what
    the engine keeps in its logs."""
    from azureml_parallel_r.compute.records import RUN_OUTPUT_NAMES, VALIDATION_OUTPUT_NAMES
    from azureml_parallel_r.operators.validation import REPORT_NAME
    from azureml_parallel_r.output_checks import FAILURES_NAME

    assert {REPORT_NAME, FAILURES_NAME} == set(VALIDATION_OUTPUT_NAMES)
    assert "validation-failures.jsonl" in RESERVED_OUTPUT_NAMES
    assert set(RUN_OUTPUT_NAMES) | set(VALIDATION_OUTPUT_NAMES) <= set(RESERVED_OUTPUT_NAMES)


def test_the_default_mini_batch_size_gives_each_process_about_ten_mini_batches_within_bounds() -> None:
    from azureml_parallel_r.run_settings import default_mini_batch_size

    assert default_mini_batch_size(9, 2) == 1 and default_mini_batch_size(0, 2) == 1
    assert default_mini_batch_size(10_000, 2) == 200  # 500 would be 10 per process: capped
    assert default_mini_batch_size(10_000, 32) == 32 and default_mini_batch_size(1_000_000, 32) == 200
    assert default_mini_batch_size(100, 0) == 10  # no processes known: one


@given(files=st.integers(0, 10**9))
def test_the_first_task_timeout_grows_with_the_input_and_stays_within_its_bounds(files: int) -> None:
    """Below about 1.7 million files nothing is passed (the runtime's 600 s holds); above, the listing Microsoft
    measured (about 553 s for four million files) fits twice over, never beyond the setting's 259200 s."""
    from azureml_parallel_r.run_settings import LISTING_SECONDS_PER_FILE, first_task_creation_timeout

    timeout = first_task_creation_timeout(files)
    if timeout is None:
        assert 2 * files * LISTING_SECONDS_PER_FILE + 120 <= 600
    else:
        assert 600 < timeout <= MAX_INVOCATION_TIMEOUT
        assert timeout >= min(2 * files * LISTING_SECONDS_PER_FILE, MAX_INVOCATION_TIMEOUT)


def test_a_run_over_four_million_files_passes_the_first_task_timeout_to_the_runtime() -> None:
    from azureml_parallel_r.models import DatasetRef, RunRequest

    def arguments(files: int) -> list[str]:
        return RunRequest(DatasetRef("d", 1, "p", files), "out", {}).entry_arguments(input_name="x")

    assert "--first_task_creation_timeout" not in arguments(10_000)
    big = arguments(4_000_000)
    assert int(big[big.index("--first_task_creation_timeout") + 1]) >= 2 * 553
