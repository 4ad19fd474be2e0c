"""What differs between the Airflow 3 minors this package supports, in one place.

Each name here is the newest Airflow's own where it has it, and the closest older one where it does not; what an
older Airflow loses is said where the feature is used and in docs/installing.md ("Airflow and Python versions").
"""

from __future__ import annotations

from airflow import __version__ as AIRFLOW_VERSION
from airflow.triggers.base import BaseTrigger

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

TRIGGER_ON_KILL = hasattr(BaseTrigger, "on_kill")
"""Whether Airflow calls a trigger's ``on_kill`` when a user stops its deferred task (mark failed or success, clear):
3.3 does, and its ``BaseTrigger`` has the method; 3.1 and 3.2 do not, so there the pipeline run goes on after the
task is stopped, until it ends or is canceled."""

__all__ = [
    "AIRFLOW_VERSION",
    "TRIGGER_ON_KILL",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "conf",
]
