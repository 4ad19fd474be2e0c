"""What differs between the Airflow 3 minors this package supports, in one place.

Each name here is the newest Airflow's own where it has it, and the closest older one where it does not; what an
older Airflow loses is said where the feature is used and in docs/installing.md ("Airflow and Python versions").
"""

from __future__ import annotations

from importlib.metadata import version

try:  # Airflow 3.2+: the Task SDK's own exceptions (Airflow's re-exports of them warn)
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.1: they are Airflow's
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )

try:  # Airflow 3.2+: the Task SDK's configuration, what a task reads without the metadata database
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[assignment]

_major, _minor, *_ = version("apache-airflow-core").split(".")
AIRFLOW_VERSION: tuple[int, int] = (int(_major), int(_minor))
"""Airflow's major and minor version, e.g. ``(3, 3)``."""

TRIGGER_ON_KILL = AIRFLOW_VERSION >= (3, 3)
"""Airflow 3.3+ calls a trigger's ``on_kill`` when a user stops its deferred task (mark failed or success, clear);
older Airflows do not, so there the pipeline run goes on after the task is stopped, until it ends or is canceled."""

__all__ = [
    "AIRFLOW_VERSION",
    "TRIGGER_ON_KILL",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "conf",
]
