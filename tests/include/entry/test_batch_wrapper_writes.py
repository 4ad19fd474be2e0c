"""The entry script when writing fails: a file whose outputs cannot be filed, a full scratch or output disk, the
runtime's invocation deadline; in every case the file fails alone, with a record, and nothing is lost."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.include.entry.entry_script import batch_wrapper, rows_by_path

pytestmark = pytest.mark.integration


FILING_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  action <- readLines(input_path, n = 1L)
  writeLines(action, file.path(output_dir, "out.txt"))
  if (action == "remove-own-folder") unlink(output_dir, recursive = TRUE)
  if (action == "link-to-nothing") file.symlink(file.path(output_dir, "never-written"), file.path(output_dir, "gone"))
  if (action == "link-to-folder") file.symlink(tempdir(), file.path(output_dir, "folder"))
  if (action == "big") writeBin(raw(2e6), file.path(output_dir, "big.bin"))
  action
}
"""


@pytest.mark.parametrize("filing", ["rename", "copy"])
def test_a_file_whose_outputs_cannot_be_filed_fails_alone_and_the_others_keep_their_rows(
    entry, write_r_script, write_inputs, filing: str
) -> None:
    """Any error while filing one file's outputs (the output folder gone, a link to nothing or to a folder among
    them) fails that file with a record; run() does not raise, so the mini-batch's other files keep their rows."""
    script = write_r_script(FILING_R_SCRIPT, "filing.r")
    actions = {"a": "fine", "b": "remove-own-folder", "c": "link-to-nothing", "d": "link-to-folder", "e": "fine"}
    inputs = write_inputs(actions)
    output = entry("--r-script", str(script), "--input-root", str(inputs))
    if filing == "copy":  # as on a blobfuse output mount: no renames into it
        batch_wrapper.processor().layout.renames = False
    rows = rows_by_path(batch_wrapper.run([str(inputs / name) for name in actions]))
    assert sorted(rows) == ["a", "e"]
    records = {name: json.loads((output / "failures" / f"{name}.json").read_text()) for name in "bcd"}
    assert {record["kind"] for record in records.values()} == {"filing_error"}
    assert "the file's output folder is gone (did the R script remove it?)" in records["b"]["error"]
    assert "output 'gone' is a link to nothing" in records["c"]["error"]
    assert "output 'folder' is a link to a folder" in records["d"]["error"]
    assert sorted(os.listdir(output / "results")) == ["a", "e"]


def test_a_full_output_disk_fails_the_file_that_does_not_fit_and_files_the_others(
    entry, write_r_script, write_inputs, small_disk
) -> None:
    script = write_r_script(FILING_R_SCRIPT, "filing.r")
    inputs = write_inputs({"a": "fine", "b": "big", "c": "fine"})
    output = small_disk("output-mount", 1 << 20) / "run"
    entry("--r-script", str(script), "--input-root", str(inputs), "--output-dir", str(output))
    rows = rows_by_path(batch_wrapper.run([str(inputs / name) for name in "abc"]))
    assert sorted(rows) == ["a", "c"]
    record = json.loads((output / "failures" / "b.json").read_text())
    assert record["kind"] == "filing_error" and "the output disk is full" in record["error"]
    assert "No space left on device" in record["error"]
    assert sorted(os.listdir(output / "results")) == ["a", "c"], "nothing of the file that did not fit is left"


FULL_SCRATCH_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  action <- readLines(input_path, n = 1L)
  if (action == "png-device") {  # R's png() device says nothing when its writes fail: a truncated image
    grDevices::png(file.path(output_dir, "noise.png"), 1500, 1500)
    graphics::par(mar = c(0, 0, 0, 0))
    graphics::plot.new()
    graphics::rasterImage(array(stats::runif(1500 * 1500 * 3), c(1500, 1500, 3)), 0, 0, 1, 1)
    grDevices::dev.off()
  }
  if (action == "writeBin") {  # writeBin only warns ("problem writing to connection")
    con <- file(file.path(output_dir, "big.bin"), "wb")
    writeBin(stats::runif(5e5), con)
    close(con)
  }
  writeLines(action, file.path(output_dir, "small.txt"))
  action
}
"""


@pytest.mark.parametrize("writer", ["png-device", "writeBin"])
def test_a_full_scratch_disk_fails_the_file_it_truncated(
    entry, write_r_script, write_inputs, small_disk, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """R writes each file's outputs to the node's local disk first; when that disk fills up, R warns or says nothing
    and returns: the file must fail with a record that says the disk is full, and nothing of it reach results/. (A
    file R went on to in the same mini-batch ran on the full disk too, and fails as well: its mini-batch is retried.)
    """
    import tempfile

    scratch_disk = small_disk("scratch-disk", 2 << 20)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_disk))
    monkeypatch.setenv("TMPDIR", str(scratch_disk))
    script = write_r_script(FULL_SCRATCH_R_SCRIPT, "full.r")
    inputs = write_inputs({"a": "fine", "b": writer, "c": "fine"})
    output = entry("--r-script", str(script), "--input-root", str(inputs))
    assert sorted(rows_by_path(batch_wrapper.run([str(inputs / "a"), str(inputs / "b")]))) == ["a"]
    assert sorted(rows_by_path(batch_wrapper.run([str(inputs / "c")]))) == ["c"], "the space is free again"
    record = json.loads((output / "failures" / "b.json").read_text())
    assert record["kind"] == "disk_full", record
    assert f"the node's scratch disk ({scratch_disk}" in record["error"] and "is full" in record["error"]
    assert sorted(os.listdir(output / "results")) == ["a", "c"]


SLOW_R_SCRIPT = r"""
process_file <- function(input_path, output_dir, args) {
  Sys.sleep(as.numeric(readLines(input_path, n = 1L)))
  writeLines("done", file.path(output_dir, "out.txt"))
  basename(input_path)
}
"""


@pytest.mark.parametrize("r_mode", ["worker", "per-file"])
def test_a_mini_batch_stops_before_its_invocation_timeout_and_keeps_what_it_finished(
    entry, write_r_script, write_inputs, monkeypatch: pytest.MonkeyPatch, r_mode: str
) -> None:
    """Without a per-file limit, a mini-batch longer than run_invocation_timeout would be killed with every file it
    finished; the entry script stops taking files before the deadline, returns the finished files' rows and records
    the others, so no results folder is left without a row."""
    names = [f"f{i:02d}" for i in range(13)]
    inputs = write_inputs(dict.fromkeys(names, "0.7"))
    monkeypatch.setattr(sys, "argv", [])  # the runtime's own arguments come with entry()
    output = entry(
        "--r-script",
        str(write_r_script(SLOW_R_SCRIPT, "slow.r")),
        "--file-timeout",
        "0",
        "--r-mode",
        r_mode,
        "--run_invocation_timeout",
        "5",
    )
    rows = rows_by_path(batch_wrapper.run([str(inputs / name) for name in names]))
    assert rows and len(rows) < len(names)
    results = set(os.listdir(output / "results"))
    assert results == set(rows), "every filed result has its row"
    failed = {path.stem: json.loads(path.read_text()) for path in (output / "failures").glob("*.json")}
    assert set(failed) == set(names) - set(rows)
    assert {record["kind"] for record in failed.values()} == {"invocation_timeout"}


def test_the_locale_is_restored_between_files(entry, write_r_script, write_inputs) -> None:
    """A script that changes the locale must not make the next file fail on its (non-ASCII) name."""
    script = write_r_script(
        "process_file <- function(input_path, output_dir, args) {\n"
        "  if (basename(input_path) == 'a-sets-the-locale') Sys.setlocale('LC_CTYPE', 'C')\n"
        "  writeLines(readLines(input_path), file.path(output_dir, 'copy.txt'))\n"
        "  Sys.getlocale('LC_CTYPE')\n"
        "}\n",
        "locale.r",
    )
    inputs = write_inputs({"a-sets-the-locale": "x", "b-ünïcødé ✓.txt": "y"})
    entry("--r-script", str(script), "--input-root", str(inputs))
    rows = rows_by_path(batch_wrapper.run([str(inputs / "a-sets-the-locale"), str(inputs / "b-ünïcødé ✓.txt")]))
    assert sorted(rows) == ["a-sets-the-locale", "b-ünïcødé ✓.txt"]
    assert rows["b-ünïcødé ✓.txt"]["value"] == "C.UTF-8"
