"""Deployment settings a DAG reads from the environment of the Airflow services, with errors that name
the variable and what it accepts (shown as the DAG's import error)."""

from __future__ import annotations

import os

import pendulum
from pendulum import Date, DateTime

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def env_date(name: str, default: str) -> DateTime:
    """Return the ISO date or date-time in environment variable ``name`` (else ``default``), in UTC.

    :param name: the environment variable.
    :param default: the ISO date used when the variable is unset or empty.
    """
    value = os.environ.get(name) or default
    try:
        parsed = pendulum.parse(value, tz="UTC", exact=True)  # its ParserError is a ValueError
    except ValueError:
        parsed = None
    if isinstance(parsed, DateTime):
        return parsed
    if isinstance(parsed, Date):
        return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
    # a time of day or a duration parses too
    raise ValueError(f"{name} must be an ISO date such as 2026-11-01, not {value!r}")


def env_flag(name: str, default: bool) -> bool:
    """Return the true/false setting in environment variable ``name`` (else ``default``).

    :param name: the environment variable.
    :param default: used when the variable is unset or empty.
    """
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _BOOLEANS:
        raise ValueError(f"{name} must be true or false, not {os.environ[name]!r}")
    return _BOOLEANS[value]
