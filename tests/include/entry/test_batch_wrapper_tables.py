"""The entry script over a table: run(DataFrame, mini_batch_context) hands each mini-batch to R's process_partition,
in both R modes; a failing partition fails alone, with its record, and raises so the runtime tries it again; a
retried partition whose result an earlier try kept is not run again."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    ("kind", "script", "message"),
    [
        ("table", "process_file <- function(input_path, output_dir, args) 1\n", r"defines no process_partition\(data"),
        ("files", "process_partition <- function(data, keys, output_dir, args) 1\n", r"defines no process_file\("),
    ],
)
def test_a_script_without_the_function_its_input_needs_fails_init(entry, write_r_script, kind, script, message) -> None:
    """init() fails, saying which function to define, rather than every partition or file failing on its own."""
    from azureml_parallel_r.compute.r_session import RSetupError

    with pytest.raises(RSetupError, match=message):
        entry("--input-kind", kind, "--r-script", str(write_r_script(script)))


def test_a_partition_for_a_script_without_process_partition_leaves_its_record(write_r_script, tmp_path) -> None:
    """Called without --input-kind table (the runtime's tabular input, whatever the arguments), each partition
    fails with a record saying what to define."""
    from azureml_parallel_r.compute.batch import BatchProcessor, PartitionFailed
    from azureml_parallel_r.compute.entry_config import parse_config

    script = write_r_script("process_file <- function(input_path, output_dir, args) 1\n")
    config = parse_config(["--r-script", str(script), "--output-dir", str(tmp_path / "out"), "--input-root", "/"], "")
    processor = BatchProcessor(config, str(tmp_path / "logs"), "p1")
    processor.start()
    try:
        with pytest.raises(PartitionFailed, match=r"defines no process_partition\(data, keys"):
            processor.process_table(pd.DataFrame({"q": [1]}), {"Store": "1"})
    finally:
        processor.close()
    record = json.loads((tmp_path / "out" / "failures" / "Store=1.json").read_text())
    assert "defines no process_partition" in record["error"]
