"""Deployment settings read from the environment."""

from __future__ import annotations

import pendulum
import pytest

from azureml_parallel_r.examples.deployment import env_date, env_flag


def test_env_date_reads_an_iso_date_or_date_time_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("START", raising=False)
    assert env_date("START", "2026-11-01") == pendulum.datetime(2026, 11, 1, tz="UTC")
    monkeypatch.setenv("START", "2027-02-03T04:05:06")
    assert env_date("START", "2026-11-01") == pendulum.datetime(2027, 2, 3, 4, 5, 6, tz="UTC")
    monkeypatch.setenv("START", "")
    assert env_date("START", "2026-11-01") == pendulum.datetime(2026, 11, 1, tz="UTC")


@pytest.mark.parametrize("value", ["early next week", "2026-13-45", "P1D", "12:00"])
def test_env_date_names_the_variable_when_the_value_is_not_a_date(monkeypatch, value: str) -> None:
    monkeypatch.setenv("START", value)
    with pytest.raises(ValueError, match=f"START must be an ISO date such as 2026-11-01, not '{value}'"):
        env_date("START", "2026-11-01")


def test_env_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAG", raising=False)
    assert env_flag("FLAG", True) is True and env_flag("FLAG", False) is False
    for value, expected in [("false", False), (" TRUE ", True), ("0", False), ("yes", True)]:
        monkeypatch.setenv("FLAG", value)
        assert env_flag("FLAG", not expected) is expected
    monkeypatch.setenv("FLAG", "sometimes")
    with pytest.raises(ValueError, match="FLAG must be true or false, not 'sometimes'"):
        env_flag("FLAG", True)
