"""The v2 parallel runtime's predefined program arguments (CLI (v2) parallel job YAML schema, "Predefined arguments
for parallel job", https://learn.microsoft.com/azure/machine-learning/reference-yaml-job-parallel)."""

from __future__ import annotations

import pytest

from azureml_parallel_r.engine.predefined_arguments import apply_predefined_arguments, predefined_arguments
from azureml_parallel_r.run_settings import ParallelRunSettings

# the program arguments of azureml-examples cli/jobs/parallel/2a_iris_batch_prediction/pipeline.yml
IRIS = [
    "--model",
    "/mnt/model",
    "--allowed_failed_percent",
    "30",
    "--task_overhead_timeout",
    "1200",
    "--progress_update_timeout",
    "600",
    "--first_task_creation_timeout",
    "600",
    "--resource_monitor_interval",
    "20",
]


def test_the_iris_samples_arguments_apply_over_the_jobs_settings() -> None:
    settings, timeouts = apply_predefined_arguments(ParallelRunSettings(error_threshold=5), IRIS)
    assert settings.allowed_failed_percent == 30 and settings.error_threshold == 5
    assert (timeouts.first_task_creation, timeouts.progress_update) == (600, 600)


def test_given_arguments_only_and_the_last_of_a_repeated_one() -> None:
    assert predefined_arguments(["--model", "m", "--error_threshold=3", "--error_threshold", "4"]) == {
        "--error_threshold": "4"
    }
    settings, timeouts = apply_predefined_arguments(ParallelRunSettings(), ["--model", "m"])
    assert settings == ParallelRunSettings() and timeouts.first_task_creation is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--error_threshold", "-2"], "--error_threshold must be in [-1, int.max], got -2"),
        (["--allowed_failed_percent", "abc"], "--allowed_failed_percent must be a number"),
        (["--progress_update_timeout", "0"], "--progress_update_timeout must be in (0, 259200], got 0"),
        (["--task_overhead_timeout", "259201"], "--task_overhead_timeout must be in (0, 259200]"),
        (["--copy_logs_to_parent", "yes"], "--copy_logs_to_parent must be True or False"),
        (["--first_task_creation_timeout"], "needs a value"),
    ],
)
def test_values_outside_the_allowed_ones_are_refused_naming_the_argument(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        apply_predefined_arguments(ParallelRunSettings(), argv)
    assert message in str(raised.value)
