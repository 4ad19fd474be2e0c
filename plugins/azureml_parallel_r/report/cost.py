"""What a run cost, as the run report shows it.

On Azure ML a run's compute is its nodes' time: ``node-hours = node_count x (run end - run start) / 3600``, priced at
the compute's VM size's hourly price. Prices come from a table: the package's default (``vm_prices.json``: common
sizes, with the date and source of its prices), with the entries of the Airflow Variable
``azureml_parallel_r_vm_prices`` over it (editable in Admin > Variables)::

    {"currency": "EUR", "as_of": "2026-12", "source": "our agreement", "prices": {"Standard_D4s_v5": 0.17}}

(a plain ``{"Standard_D4s_v5": 0.17}`` works too). Sizes match ignoring case. A size with no price shows node-hours
without a price.

What it omits: a node's start (image pull, environment set-up) before the run starts and its idle time before the
cluster scales down, nodes a cluster's minimum keeps, disks, storage, network and any discount or reservation. A run
still going is priced up to now.

On the local engine the figure is CPU-seconds: the run's processes' user and system time (controller, workers, R),
which the engine measures when the run ends.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

PRICES_VARIABLE = "azureml_parallel_r_vm_prices"
LOCAL_ENGINE = "local"


def default_prices() -> dict[str, Any]:
    """The package's price table."""
    return json.loads(resources.files("azureml_parallel_r.report").joinpath("vm_prices.json").read_text("utf-8"))


def price_table(variable: str | None) -> dict[str, Any]:
    """The default table with the Variable's entries over it.

    :param variable: the Variable's JSON text (None: not set).
    :raises ValueError: the Variable is not a JSON object of sizes and prices.
    """
    table = default_prices()
    if not variable:
        return table
    try:
        given = json.loads(variable)
    except ValueError as exc:
        raise ValueError(f"the Airflow Variable {PRICES_VARIABLE} is not JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise ValueError(f"the Airflow Variable {PRICES_VARIABLE} must be a JSON object of VM sizes and prices")
    prices = given.get("prices", {k: v for k, v in given.items() if k not in ("currency", "as_of", "source")})
    if not isinstance(prices, dict):
        raise ValueError(f"the Airflow Variable {PRICES_VARIABLE}: 'prices' must map VM sizes to prices per hour")
    bad = [size for size, price in prices.items() if not isinstance(price, int | float) or isinstance(price, bool)]
    if bad:
        raise ValueError(f"the Airflow Variable {PRICES_VARIABLE}: a price must be a number per hour, not {bad[:3]}")
    table["prices"] = {**table["prices"], **prices}
    table["currency"] = given.get("currency", table["currency"])
    table["as_of"] = given.get("as_of", table["as_of"])
    table["source"] = given.get("source", f"{table['source']} With the entries of {PRICES_VARIABLE} over them.")
    return table


def read_price_table() -> dict[str, Any]:
    """The price table, with the Airflow Variable read from Airflow's metadata database."""
    from airflow.models.variable import Variable

    return price_table(Variable.get(PRICES_VARIABLE, default_var=None))


def run_cost(
    *,
    engine: str,
    node_count: int | None,
    vm_size: str | None,
    started_at: float | None,
    ended_at: float | None,
    now: float,
    succeeded_files: int | None,
    cpu_seconds: float | None,
    prices: dict[str, Any],
) -> dict[str, Any]:
    """A run's cost: node-hours and price (Azure ML), CPU-seconds (local engine), and per successful file.

    :param engine: the engine's name.
    :param node_count: the run's nodes.
    :param vm_size: the compute's VM size (None: unknown).
    :param started_at: when the run started (epoch seconds; None: not yet).
    :param ended_at: when it ended (None: still going, priced up to ``now``).
    :param now: the time now.
    :param succeeded_files: its successful files so far.
    :param cpu_seconds: the CPU time its processes used (the local engine).
    :param prices: the price table (:func:`price_table`).
    """
    per_file = succeeded_files if succeeded_files else None
    if engine == LOCAL_ENGINE:
        return {
            "kind": "cpu",
            "cpu_seconds": cpu_seconds,
            "cpu_seconds_per_successful_file": round(cpu_seconds / per_file, 4) if cpu_seconds and per_file else None,
            "final": ended_at is not None,
        }
    hours = None
    if started_at is not None and node_count:
        hours = round(node_count * max(0.0, (ended_at if ended_at is not None else now) - started_at) / 3600, 4)
    by_size = {size.casefold(): price for size, price in prices["prices"].items()}
    price = by_size.get(str(vm_size).casefold()) if vm_size else None
    total = round(hours * price, 4) if hours is not None and price is not None else None
    return {
        "kind": "node_hours",
        "vm_size": vm_size,
        "node_count": node_count,
        "node_hours": hours,
        "price_per_hour": price,
        "currency": prices.get("currency"),
        "total": total,
        "per_successful_file": round(total / per_file, 6) if total is not None and per_file else None,
        "prices_as_of": prices.get("as_of"),
        "prices_source": prices.get("source"),
        "final": ended_at is not None,
    }
