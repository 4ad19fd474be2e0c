"""The entry script over a table: run(DataFrame, mini_batch_context) hands each mini-batch to R's process_partition,
in both R modes; a failing partition fails alone, with its record, and raises so the runtime tries it again; a
retried partition whose result an earlier try kept is not run again."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.include.entry.entry_script import batch_wrapper

pytestmark = pytest.mark.integration

SCRIPT = """
process_partition <- function(data, keys, output_dir, args) {
  if (identical(keys$Store, "bad")) stop("no model for store ", keys$Store)
  count_file <- file.path(Sys.getenv("COUNTS"), paste0(keys$Store, ".txt"))
  cat("x", file = count_file, append = TRUE)
  writeLines(as.character(sum(data$q)), file.path(output_dir, "total.txt"))
  list(rows = nrow(data), store = keys$Store)
}
"""


def _context(**keys: str) -> SimpleNamespace:
    return SimpleNamespace(partition_key_value=keys, dataset=None)


@pytest.mark.parametrize("mode", ["worker", "per-file"])
def test_partitions_reach_process_partition_and_fail_alone(entry, write_r_script, tmp_path, monkeypatch, mode) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv("COUNTS", str(counts))
    script = write_r_script(SCRIPT)
    output = entry("--input-kind", "table", "--r-script", str(script), "--r-mode", mode)
    rows = batch_wrapper.run(pd.DataFrame({"q": [1, 2, 3]}), _context(Store="1000"))
    (row,) = [json.loads(line) for line in rows]
    assert row["relative_path"] == "Store=1000" and row["value"] == {"rows": 3, "store": "1000"}
    assert (output / "results" / "Store=1000" / "total.txt").read_text().strip() == "6"
    with pytest.raises(batch_wrapper.PartitionFailed, match="partition 'Store=bad' failed"):
        batch_wrapper.run(pd.DataFrame({"q": [1]}), _context(Store="bad"))
    record = json.loads((output / "failures" / "Store=bad.json").read_text())
    assert record["error"] == "no model for store bad" and record["kind"] == "r_error"
    # the runtime tries the first partition again (its mini-batch's try was lost): the kept result is returned
    assert batch_wrapper.run(pd.DataFrame({"q": [1, 2, 3]}), _context(Store="1000")) == rows
    assert (counts / "1000.txt").read_text() == "x"  # R ran it once


def test_a_table_for_a_script_with_only_process_file_fails_saying_so(entry, tmp_path: Path) -> None:
    from tests.conftest import EXAMPLE_R_SCRIPT

    output = entry("--input-kind", "table", "--r-script", str(EXAMPLE_R_SCRIPT))
    with pytest.raises(batch_wrapper.PartitionFailed, match=r"defines no process_partition\(data, keys"):
        batch_wrapper.run(pd.DataFrame({"q": [1]}), _context(Store="1"))
    record = json.loads((output / "failures" / "Store=1.json").read_text())  # validation shows why, per partition
    assert "defines no process_partition" in record["error"]
