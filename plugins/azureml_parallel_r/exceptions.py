"""One exception per failure the Airflow tasks report."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class EmptyInputError(AirflowException):
    """The input folder is missing or holds no files, and the task was told to fail on that."""


class ParallelRunFailedError(AirflowException):
    """The pipeline run ended Failed or Canceled."""


class OutputValidationError(AirflowException):
    """The run's outputs do not account for every input file."""
