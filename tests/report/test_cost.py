"""What a run cost: the price table (the package's default with the Airflow Variable over it) and node-hours or
CPU-seconds per run and per successful file."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azureml_parallel_r.report.cost import PRICES_VARIABLE, default_prices, price_table, run_cost

PRICES = {"currency": "USD", "as_of": "2025-01", "source": "test", "prices": {"Standard_D4s_v5": 0.192}}
RUN = {
    "engine": "azureml_v2",
    "node_count": 2,
    "vm_size": "Standard_D4s_v5",
    "started_at": 0.0,
    "ended_at": 3600.0,
    "now": 0.0,
    "succeeded_files": 10,
    "cpu_seconds": None,
    "prices": PRICES,
}


def cost_of(**changes: object) -> dict:
    return run_cost(**{**RUN, **changes})  # type: ignore[arg-type]


def test_the_default_table_says_its_date_and_source_and_prices_common_sizes() -> None:
    table = default_prices()
    assert table["currency"] == "USD" and table["as_of"] and "prices.azure.com" in table["source"]
    for size in ("Standard_DS3_v2", "Standard_D4s_v3", "Standard_F4s_v2", "Standard_NC6s_v3"):
        assert table["prices"][size] > 0, size


def test_the_variable_adds_and_overrides_prices_and_may_name_its_own_currency() -> None:
    table = price_table(json.dumps({"Standard_DS3_v2": 0.25, "Custom_X": 1}))
    assert table["prices"]["Standard_DS3_v2"] == 0.25 and table["prices"]["Custom_X"] == 1
    assert table["prices"]["Standard_D4s_v3"] == default_prices()["prices"]["Standard_D4s_v3"]
    assert PRICES_VARIABLE in table["source"]
    own = price_table(json.dumps({"currency": "EUR", "as_of": "2026-12", "source": "our agreement", "prices": {}}))
    assert (own["currency"], own["as_of"], own["source"]) == ("EUR", "2026-12", "our agreement")


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '{"prices": [1]}', '{"Standard_D2_v3": "cheap"}', '{"a": true}']
)
def test_a_variable_that_is_not_a_price_table_says_what_to_fix(text: str) -> None:
    with pytest.raises(ValueError, match=PRICES_VARIABLE):
        price_table(text)


def test_an_azure_run_is_node_hours_at_its_vm_sizes_price() -> None:
    cost = cost_of(node_count=4, vm_size="STANDARD_D4S_V5", started_at=1000.0, ended_at=2800.0, succeeded_files=1000)
    assert cost["node_hours"] == 2.0 and cost["price_per_hour"] == 0.192 and cost["total"] == 0.384
    assert cost["per_successful_file"] == 0.000384 and cost["final"] and cost["currency"] == "USD"


def test_a_run_still_going_is_priced_up_to_now_and_an_unknown_size_has_no_price() -> None:
    going = cost_of(ended_at=None, now=3600.0, succeeded_files=0)
    assert going["node_hours"] == 2.0 and not going["final"] and going["per_successful_file"] is None
    unknown = cost_of(vm_size="Standard_Unlisted")
    assert unknown["node_hours"] == 2.0 and unknown["price_per_hour"] is None and unknown["total"] is None


@given(
    nodes=st.integers(1, 100),
    seconds=st.floats(0, 1e6, allow_nan=False),
    price=st.floats(0.001, 50, allow_nan=False),
    files=st.integers(0, 10**6),
)
def test_cost_is_nodes_times_hours_times_price_whatever_the_run(nodes: int, seconds: float, price: float, files: int):
    prices = {"currency": "USD", "prices": {"S": price}}
    cost = cost_of(
        node_count=nodes, vm_size="s", started_at=5.0, ended_at=5.0 + seconds, succeeded_files=files, prices=prices
    )
    assert cost["node_hours"] == pytest.approx(nodes * seconds / 3600, abs=1e-4)
    assert cost["total"] == pytest.approx(cost["node_hours"] * price, abs=1e-4)
    assert (cost["per_successful_file"] is None) == (files == 0)


def test_a_local_run_is_cpu_seconds() -> None:
    cost = cost_of(engine="local", node_count=1, vm_size=None, ended_at=10.0, succeeded_files=4, cpu_seconds=12.0)
    assert cost == {"kind": "cpu", "cpu_seconds": 12.0, "cpu_seconds_per_successful_file": 3.0, "final": True}
