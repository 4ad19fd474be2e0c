"""The ParallelRunStep entry script with the example R script and real files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import batch_wrapper
from azureml_parallel_r.example_dags.samples import make_sample_inputs, write_png
from r_session import RSetupError
from tests.conftest import EXAMPLE_R_SCRIPT

pytestmark = pytest.mark.integration

# What the real ParallelRunStep driver passes besides the user's arguments.
RUNTIME_ARGS = [
    "--client_sdk_version",
    "1.62.0",
    "--scoring_module_name",
    "entry/batch_wrapper.py",
    "--mini_batch_size",
    "10",
    "--output",
    "/somewhere",
    "--error_threshold",
    "-1",
]


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Return a function that runs init() with the given arguments; shutdown() runs afterwards."""
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "output"))

    def start(*args: str) -> Path:
        if "--input-root" not in args and "--input-name" not in args:
            args = ("--input-root", str(tmp_path / "inputs"), *args)
        monkeypatch.setattr(sys, "argv", ["batch_wrapper.py", *RUNTIME_ARGS, *args])
        batch_wrapper.init()
        return tmp_path / "output"

    yield start
    batch_wrapper.shutdown()


def _rows(rows: list[str]) -> dict[str, dict]:
    parsed = [json.loads(row) for row in rows]
    return {row["relative_path"]: row for row in parsed}


def test_example_script_over_real_images_and_tables(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    files = make_sample_inputs(str(inputs), images=4)
    output = entry("--input-root", str(inputs), "--r-arg=--thumbnail-size", "--r-arg=8")
    rows = _rows(batch_wrapper.run(files))
    assert set(rows) == {os.path.relpath(f, inputs) for f in files} - {"camera-b/broken.png"}
    png = rows["camera-a/img_0000.png"]
    assert png["value"] == {"kind": "image", "width": 64, "height": 48, "channels": 3}
    assert png["outputs"] == ["results/camera-a/img_0000.png/stats.json", "results/camera-a/img_0000.png/thumbnail.png"]
    stats = json.loads((output / "results/camera-a/img_0000.png/stats.json").read_text())
    assert [c["channel"] for c in stats["per_channel"]] == ["red", "green", "blue"]
    assert 0.4 < stats["per_channel"][0]["mean"] < 0.6 and stats["per_channel"][0]["sd"] > 0.2
    assert rows["gray scan.png"]["value"]["channels"] == 1
    assert rows["tables/photo.jpg"]["value"]["kind"] == "image"
    assert rows["tables/table.rds"]["value"] == {"kind": "table", "tables": {"data": 20}}
    summary = (output / "results/tables/table.rds/summary.csv").read_text().splitlines()
    assert summary[0] == '"column","type","n","n_missing","n_unique","mean","sd","min","max"'
    assert len(summary) == 4
    assert sorted(os.listdir(output / "results/tables/tables.RData")) == [
        "calibration_summary.csv",
        "measurements_summary.csv",
    ]
    thumb = output / "results/camera-a/img_0000.png/thumbnail.png"
    assert thumb.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the corrupt image failed alone, with R's reason, and left nothing in results/
    assert not (output / "results/camera-b/broken.png").exists()
    failure = json.loads((output / "failures/camera-b/broken.png.json").read_text())
    assert failure["kind"] == "r_error" and "not in PNG format" in failure["error"]
    assert failure["attempt"] == 1 and failure["input"].endswith("broken.png")


def test_zero_byte_and_unsupported_files_fail_alone_with_clear_errors(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    good = write_png(str(inputs / "good.png"))
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "notes.txt").write_text("hello")
    output = entry("--input-root", str(inputs))
    rows = _rows(batch_wrapper.run([str(inputs / "empty.png"), good, str(inputs / "notes.txt")]))
    assert list(rows) == ["good.png"]
    empty = json.loads((output / "failures/empty.png.json").read_text())
    assert "empty.png" in empty["error"]
    unsupported = json.loads((output / "failures/notes.txt.json").read_text())
    assert "unsupported file type 'txt'" in unsupported["error"] and "notes.txt" in unsupported["error"]


def test_hostile_names_and_same_basename_in_two_folders(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    names = [
        "a/x.png",
        "b/x.png",
        "-leading dash.png",
        'quote\'s "dq".png',
        "$(touch pwned).png",
        "ünïcødé ✓/ñ.png",
        "deep/er/and/deeper/x.png",
        "semi;colon && pipe|.png",
    ]
    files = [write_png(str(inputs / name), 8, 8, seed=i) for i, name in enumerate(names)]
    output = entry("--input-root", str(inputs))
    rows = _rows(batch_wrapper.run(files))
    assert sorted(rows) == sorted(names)
    for name in names:
        assert (output / "results" / name / "stats.json").is_file(), name
    assert json.loads((output / "results/a/x.png/stats.json").read_text())["file"] == "x.png"
    assert not (Path.cwd() / "pwned").exists() and not (inputs / "pwned").exists()


def test_crash_and_timeout_fail_one_file_and_the_mini_batch_goes_on(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"1": "fine", "2": "crash", "3": "hang", "4": "quit", "5": "partial", "6": "fine"})
    output = entry("--r-script", str(behaviour_script), "--input-root", str(inputs), "--file-timeout", "2")
    rows = _rows(batch_wrapper.run([str(inputs / name) for name in "123456"]))
    assert sorted(rows) == ["1", "6"]
    kinds = {name: json.loads((output / "failures" / f"{name}.json").read_text())["kind"] for name in "2345"}
    assert kinds == {"2": "crash", "3": "timeout", "4": "crash", "5": "r_error"}
    assert sorted(os.listdir(output / "results")) == ["1", "6"], "a failed file must leave nothing in results/"


def test_per_file_mode_starts_r_for_each_file(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"a": "fine", "b": "fine", "c": "error"})
    entry("--r-script", str(behaviour_script), "--r-mode", "per-file", "--input-root", str(inputs))
    rows = _rows(batch_wrapper.run([str(inputs / n) for n in "abc"]))
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["value"]["pid"] != rows["b"]["value"]["pid"]


def test_worker_mode_reuses_one_r_process_until_a_file_fails(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"a": "fine", "b": "fine", "c": "error", "d": "fine"})
    entry("--r-script", str(behaviour_script), "--input-root", str(inputs))
    rows = _rows(batch_wrapper.run([str(inputs / n) for n in "abcd"]))
    assert rows["a"]["value"]["pid"] == rows["b"]["value"]["pid"] != rows["d"]["value"]["pid"]


def test_retry_that_succeeds_replaces_the_failure_record(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"x": "error"})
    output = entry("--r-script", str(behaviour_script), "--input-root", str(inputs))
    assert batch_wrapper.run([str(inputs / "x")]) == []
    assert json.loads((output / "failures/x.json").read_text())["attempt"] == 1
    (inputs / "x").write_text("fine\n")
    assert len(batch_wrapper.run([str(inputs / "x")])) == 1
    assert not (output / "failures/x.json").exists()


def test_relative_r_script_resolves_against_the_source_directory(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    png = write_png(str(inputs / "p.png"))
    entry("--r-script", "r/process_file.r", "--input-root", str(inputs))
    assert batch_wrapper.processor().config.r_script == str(EXAMPLE_R_SCRIPT)
    assert len(batch_wrapper.run([png])) == 1


def test_output_dir_argument_wins_over_the_environment(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    png = write_png(str(inputs / "p.png"))
    entry("--output-dir", str(tmp_path / "explicit"), "--input-root", str(inputs))
    batch_wrapper.run([png])
    assert (tmp_path / "explicit" / "results" / "p.png" / "stats.json").is_file()


def test_scratch_is_on_local_disk_outside_the_output_and_shutdown_removes_it(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    output = entry("--input-root", str(inputs))
    scratch_root = batch_wrapper.processor().layout.scratch_root
    assert not scratch_root.startswith(str(output))  # the output may be a blobfuse mount
    batch_wrapper.run([write_png(str(inputs / "p.png"))])
    assert sorted(p.name for p in output.iterdir()) == ["results"]
    batch_wrapper.shutdown()
    assert not os.path.exists(scratch_root)


def test_a_mini_batch_file_outside_the_dataset_root_fails_the_mini_batch(entry, tmp_path: Path) -> None:
    output = entry("--input-root", str(tmp_path / "inputs"))
    stray = write_png(str(tmp_path / "elsewhere" / "p.png"))
    with pytest.raises(ValueError, match=r"is not under the dataset root .*Check --input-root / --input-name"):
        batch_wrapper.run([stray])
    assert not (output / "results").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--r-script", "does/not/exist.r"], r"R script not found: 'does/not/exist.r' \(looked at .*\)"),
        (["--rscript", "/nonexistent/Rscript"], "Rscript not found"),
        (["--file-timeout", "-1"], "--file-timeout must be >= 0"),
    ],
)
def test_init_fails_fast_with_what_to_fix(entry, args: list[str], message: str) -> None:
    with pytest.raises((RSetupError, ValueError), match=message):
        entry(*args)


def test_init_fails_fast_on_a_script_that_does_not_parse_without_echoing_it(entry, write_r_script) -> None:
    script = write_r_script("process_file <- function(a, b, c) {\n  S3CRET_TOKEN here\n}\n", "broken.r")
    with pytest.raises(RSetupError, match=r"does not parse: .*broken.r:2:16: unexpected symbol") as error:
        entry("--r-script", str(script))
    assert "S3CRET_TOKEN" not in str(error.value)


def test_missing_output_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_BI_OUTPUT_PATH", raising=False)
    with pytest.raises(ValueError, match="pass --output-dir or set AZUREML_BI_OUTPUT_PATH"):
        batch_wrapper.parse_config(["--r-script", str(EXAMPLE_R_SCRIPT), "--input-root", "/data"])


def test_a_missing_dataset_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no dataset root: pass --input-root DIR .* or --input-name NAME"):
        batch_wrapper.parse_config(["--output-dir", str(tmp_path)])


def test_runtime_arguments_are_ignored_and_r_args_keep_leading_dashes(tmp_path: Path) -> None:
    config = batch_wrapper.parse_config(
        [*RUNTIME_ARGS, "--output-dir", str(tmp_path), "--input-root", "/data", "--r-arg=--flag", "--r-arg",
         "value with space"]
    )  # fmt: skip
    assert config.r_args == ("--flag", "value with space")
    assert config.output_dir == str(tmp_path)
    assert config.r_mode == "worker" and config.file_timeout == 300


def test_run_before_init_is_an_error() -> None:
    batch_wrapper.shutdown()
    with pytest.raises(RuntimeError, match="before init"):
        batch_wrapper.run(["x"])


def test_input_root_from_the_named_input_as_the_runtime_exposes_it(tmp_path: Path, monkeypatch) -> None:
    """AZUREML_DATASET_ENVIRONMENT_VARS lists NAME:mode pairs; the mount path is in os.environ[NAME]
    (azureml/core/run.py, InputDatasets._load_input_datasets)."""
    mount = tmp_path / "mnt" / "input_files"
    mount.mkdir(parents=True)
    monkeypatch.setenv("AZUREML_DATASET_ENVIRONMENT_VARS", "other:mount,input_files:mount,")
    monkeypatch.setenv("input_files", str(mount))
    monkeypatch.setenv("AZUREML_DATAREFERENCE_input_files", "/not/used/for/file/datasets")
    config = batch_wrapper.parse_config(["--output-dir", str(tmp_path), "--input-name", "input_files"])
    assert config.input_root == str(mount)
    explicit = batch_wrapper.parse_config(["--output-dir", str(tmp_path), "--input-name", "input_files",
                                           "--input-root", "/data"])  # fmt: skip
    assert explicit.input_root == "/data"


@pytest.mark.parametrize(
    ("variables", "value", "message"),
    [
        ("", None, r"the runtime exposes no input named 'input_files' .*as_named_input\(NAME\)\.as_mount\(\)"),
        ("input_files:direct", "0f9a-dataset-id", r"reaches the job as a dataset id \(direct mode\)"),
        (
            "input_files:mount",
            "/no/such/mount",
            "should be mounted at '/no/such/mount', but that folder does not exist",
        ),
    ],
)
def test_a_named_input_the_runtime_does_not_expose_fails_init(
    entry, monkeypatch: pytest.MonkeyPatch, variables: str, value: str | None, message: str
) -> None:
    monkeypatch.setenv("AZUREML_DATASET_ENVIRONMENT_VARS", variables)
    if value:
        monkeypatch.setenv("input_files", value)
    with pytest.raises(ValueError, match=message):
        entry("--input-name", "input_files")


def test_any_failed_file_name_gets_a_failure_record_and_never_fails_the_other_files(entry, behaviour_script,
                                                                                    tmp_path) -> None:  # fmt: skip
    """Names that cannot be a record's file name as such: not UTF-8, too long for the file system once
    ".json" is added, or colliding with another input's folder (``a`` and ``a.json/b``)."""
    inputs = tmp_path / "inputs"
    names = [os.fsdecode(b"latin1-\xe9t\xe9.png"), "n" * 250, "a", "a.json/b", "good1", "good2"]
    for name in names:
        path = inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("fine\n" if name.startswith("good") else "error\n")
    output = entry("--r-script", str(behaviour_script), "--input-root", str(inputs))
    rows = _rows(batch_wrapper.run([str(inputs / name) for name in names]))
    assert set(rows) == {"good1", "good2"}
    records = {}
    for path in (output / "failures").rglob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[record["relative_path"]] = record
    assert set(records) == set(names[:4]) and all(r["kind"] == "r_error" for r in records.values())
    from azureml_parallel_r.models import failure_key

    keys = {failure_key(str(p.relative_to(output / "failures")), json.loads(p.read_text())) for p in
            (output / "failures").rglob("*.json")}  # fmt: skip
    assert keys == set(names[:4])


def test_a_row_is_one_line_whatever_r_returns(entry, write_r_script, write_inputs) -> None:
    """U+2028, U+2029, U+0085 and newlines in values and names: each row stays one line of the rows file."""
    script = write_r_script(
        "process_file <- function(input_path, output_dir, args) "
        'list(text = "a\\u2028b\\u2029c\\u0085d\\ne\\rf", name = basename(input_path))\n'
    )
    inputs = write_inputs({"line\u2028break\u0085name": "x", "plain": "x"})
    entry("--r-script", str(script), "--input-root", str(inputs))
    rows = batch_wrapper.run([str(p) for p in sorted(inputs.iterdir())])
    from azureml_parallel_r.models import split_rows

    text = "".join(f"{row}\n" for row in rows)
    assert all("\u2028" not in row and "\x85" not in row and "\n" not in row for row in rows)
    assert len(text.splitlines()) == len(split_rows(text)) == 2
    # a rows file written by another writer may hold raw U+2028 inside a JSON string: still one row
    raw = '{"relative_path": "x", "value": "a\u2028b"}\n{"relative_path": "y"}\n'
    assert len(raw.splitlines()) == 3 and [json.loads(r)["relative_path"] for r in split_rows(raw)] == ["x", "y"]
    parsed = {json.loads(r)["relative_path"]: json.loads(r)["value"] for r in split_rows(text)}
    assert parsed["line\u2028break\u0085name"]["text"] == "a\u2028b\u2029c\u0085d\ne\rf"


def test_a_huge_value_is_summarised_before_it_is_encoded(entry, write_r_script, write_inputs) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) rep(1.5, 5e6)\n")
    inputs = write_inputs({"big": "x"})
    entry("--r-script", str(script), "--input-root", str(inputs))
    (row,) = batch_wrapper.run([str(inputs / "big")])
    value = json.loads(row)["value"]
    assert (
        value["truncated"] is True and value["bytes_in_r"] > 4e7 and value["preview"].startswith(" num [1:5000000] 1.5")
    )
    assert len(row) < 2000


# -- nothing lost when writing fails: filing errors, full disks, the invocation deadline --------------------------

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
    rows = _rows(batch_wrapper.run([str(inputs / name) for name in actions]))
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
    rows = _rows(batch_wrapper.run([str(inputs / name) for name in "abc"]))
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
    assert sorted(_rows(batch_wrapper.run([str(inputs / "a"), str(inputs / "b")]))) == ["a"]
    assert sorted(_rows(batch_wrapper.run([str(inputs / "c")]))) == ["c"], "the space is free again"
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
    output = entry("--r-script", str(write_r_script(SLOW_R_SCRIPT, "slow.r")), "--file-timeout", "0",
                   "--r-mode", r_mode, "--run_invocation_timeout", "5")  # fmt: skip
    rows = _rows(batch_wrapper.run([str(inputs / name) for name in names]))
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
    rows = _rows(batch_wrapper.run([str(inputs / "a-sets-the-locale"), str(inputs / "b-ünïcødé ✓.txt")]))
    assert sorted(rows) == ["a-sets-the-locale", "b-ünïcødé ✓.txt"]
    assert rows["b-ünïcødé ✓.txt"]["value"] == "C.UTF-8"
