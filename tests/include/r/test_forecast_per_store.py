"""The per-store forecast, the example R script over a table: docs/r-script.md's block as written, and what the
script does with a partition it cannot fit and arguments it cannot use."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import INCLUDE

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[3] / "docs" / "r-script.md"


def _block() -> str:
    found = re.search(r"<!-- table example:[^>]*-->\s*```bash\n(.*?)```", DOCS.read_text(), re.S)
    assert found, "docs/r-script.md has no table example block"
    return found.group(1)


def test_the_docs_table_example_runs_as_written(tmp_path: Path) -> None:
    """A model per store and brand on the local engine: eleven forecasts of 4 weeks (--horizon 4), and the partition
    with three weeks fails alone with its R error."""
    (tmp_path / "include").symlink_to(INCLUDE)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.splitlines()
    rows = list(csv.DictReader(printed[printed.index('"WeekStarting","Quantity","lower","upper"') :]))
    assert len(rows) == 4 and set(rows[0]) == {"WeekStarting", "Quantity", "lower", "upper"}
    assert all(float(r["lower"]) <= float(r["Quantity"]) <= float(r["upper"]) for r in rows)
    output = tmp_path / "oj-forecast"
    assert len(list((output / "results").glob("Store=*/Brand=*/forecast.csv"))) == 11
    (failure,) = (output / "failures").glob("Store=*/Brand=*.json")
    record = json.loads(failure.read_text())
    assert record["relative_path"] == "Store=1006/Brand=tropicana" and "has 3 weeks" in record["error"]
    values = [json.loads(line)["value"] for line in (output / "parallel_run_step.txt").read_text().splitlines()]
    assert all(v["weeks"] == 60 and v["price_elasticity"] < 0 for v in values)


def test_a_bad_horizon_fails_the_partition_saying_what_to_fix(tmp_path: Path) -> None:
    import pandas as pd

    from azureml_parallel_r.compute.r_session import RSession
    from azureml_parallel_r.compute.tables import write_table

    frame = pd.DataFrame(
        {
            "WeekStarting": pd.date_range("2020-01-02", periods=30, freq="7D"),
            "Quantity": range(100, 130),
            "Advert": [0, 1] * 15,
            "Price": [2.0 + 0.01 * i for i in range(30)],
        }
    )
    table = write_table(frame, str(tmp_path / "p.csv"))
    table["keys"] = {"Store": "1"}
    session = RSession(str(INCLUDE / "r" / "forecast_per_store.r"), str(tmp_path / "r.txt"))
    session.start()
    try:
        bad = session.process(str(tmp_path / "p.csv"), str(tmp_path / "out1"), ["--horizon", "0"], table=table)
        good = session.process(str(tmp_path / "p.csv"), str(tmp_path / "out2"), ["--horizon", "2"], table=table)
    finally:
        session.close()
    assert not bad.ok and bad.error == "--horizon must be a positive whole number"
    assert good.ok and good.value["weeks"] == 30
    assert len((tmp_path / "out2" / "forecast.csv").read_text().splitlines()) == 3
