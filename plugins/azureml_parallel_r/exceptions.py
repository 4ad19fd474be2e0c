"""One exception per failure the Airflow tasks report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from azureml_parallel_r.airflow_versions import AirflowException, AirflowFailException


class ConfigurationError(AirflowFailException, ValueError):
    """A setting, connection or input that no retry can fix: the task fails at once, without its retries."""


class EmptyInputError(AirflowException):
    """The input folder is missing or holds no files, and the task was told to fail on that."""


class ParallelRunFailedError(AirflowException):
    """The pipeline run ended Failed or Canceled."""


class OutputValidationError(AirflowException):
    """The run's outputs do not account for every input file."""


@contextlib.contextmanager
def not_retried() -> Iterator[None]:
    """Checks whose ``ValueError`` (a bad argument, setting or input, with what to fix) a retry cannot mend: raised
    as :class:`ConfigurationError`, so Airflow fails the task at once instead of trying it again unchanged."""
    try:
        yield
    except AirflowException:
        raise
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
