"""ParallelRunConfig-like settings: Azure's defaults and clear range errors."""

from __future__ import annotations

import pytest

from azureml_parallel_r.run_settings import ParallelRunSettings


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


def test_an_invocation_timeout_a_slow_file_would_exceed_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match=r"run_invocation_timeout=600 s must be above mini_batch_size x file_timeout "
                       r"= 10 x 300 s = 3000 s.*raise run_invocation_timeout, lower file_timeout"):  # fmt: skip
        ParallelRunSettings(run_invocation_timeout=600)
    assert ParallelRunSettings(run_invocation_timeout=3001).invocation_timeout == 3001
    assert ParallelRunSettings(run_invocation_timeout=30, file_timeout=0).invocation_timeout == 30


def test_the_rows_file_is_named_as_the_runtime_writes_it() -> None:
    assert ParallelRunSettings(append_row_file_name="Rows_2026.TXT").rows_file_name == "rows_2026.txt"


@pytest.mark.parametrize("name", ["results", "Failures", "logs", "validation.json", "VALIDATION.JSON", "status.json"])
def test_a_rows_file_named_as_a_part_of_the_output_folder_is_refused(name: str) -> None:
    """The rows would land inside results/ or logs/, or overwrite validation.json (the runtime lower-cases the name)."""
    with pytest.raises(ValueError, match=f"append_row_file_name '{name}' is a name the run's output folder uses"):
        ParallelRunSettings(append_row_file_name=name)


def test_the_reserved_names_cover_the_folders_the_entry_script_writes() -> None:
    """The shipped code keeps its own names (it cannot import the plugin): they must agree."""
    import output_layout
    from azureml_parallel_r.run_settings import FAILURES_DIR, RESERVED_OUTPUT_NAMES, RESULTS_DIR

    assert (output_layout.RESULTS_DIR, output_layout.FAILURES_DIR) == (RESULTS_DIR, FAILURES_DIR)
    assert {RESULTS_DIR, FAILURES_DIR} <= set(RESERVED_OUTPUT_NAMES)


def test_the_default_mini_batch_size_gives_each_process_about_ten_mini_batches_within_bounds() -> None:
    from azureml_parallel_r.run_settings import default_mini_batch_size

    assert default_mini_batch_size(9, 2) == 1 and default_mini_batch_size(0, 2) == 1
    assert default_mini_batch_size(10_000, 2) == 200  # 500 would be 10 per process: capped
    assert default_mini_batch_size(10_000, 32) == 32 and default_mini_batch_size(1_000_000, 32) == 200
    assert default_mini_batch_size(100, 0) == 10  # no processes known: one
