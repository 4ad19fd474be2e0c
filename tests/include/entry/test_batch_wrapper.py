"""The ParallelRunStep entry script with the example R script and real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azureml_parallel_r.compute.r_session import RSetupError
from azureml_parallel_r.examples.samples import make_sample_inputs, write_png
from tests.conftest import EXAMPLE_R_SCRIPT
from tests.include.entry.entry_script import RUNTIME_ARGS, batch_wrapper, rows_by_path

pytestmark = pytest.mark.integration


# What the real ParallelRunStep driver passes besides the user's arguments.
def test_example_script_over_real_images_and_tables(entry, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    files = make_sample_inputs(str(inputs), images=4)
    output = entry("--input-root", str(inputs), "--r-arg=--thumbnail-size", "--r-arg=8")
    rows = rows_by_path(batch_wrapper.run(files))
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
    rows = rows_by_path(batch_wrapper.run([str(inputs / "empty.png"), good, str(inputs / "notes.txt")]))
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
    rows = rows_by_path(batch_wrapper.run(files))
    assert sorted(rows) == sorted(names)
    for name in names:
        assert (output / "results" / name / "stats.json").is_file(), name
    assert json.loads((output / "results/a/x.png/stats.json").read_text())["file"] == "x.png"
    assert not (Path.cwd() / "pwned").exists() and not (inputs / "pwned").exists()


def test_crash_and_timeout_fail_one_file_and_the_mini_batch_goes_on(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"1": "fine", "2": "crash", "3": "hang", "4": "quit", "5": "partial", "6": "fine"})
    output = entry("--r-script", str(behaviour_script), "--input-root", str(inputs), "--file-timeout", "2")
    rows = rows_by_path(batch_wrapper.run([str(inputs / name) for name in "123456"]))
    assert sorted(rows) == ["1", "6"]
    kinds = {name: json.loads((output / "failures" / f"{name}.json").read_text())["kind"] for name in "2345"}
    assert kinds == {"2": "crash", "3": "timeout", "4": "crash", "5": "r_error"}
    assert sorted(os.listdir(output / "results")) == ["1", "6"], "a failed file must leave nothing in results/"


def test_per_file_mode_starts_r_for_each_file(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"a": "fine", "b": "fine", "c": "error"})
    entry("--r-script", str(behaviour_script), "--r-mode", "per-file", "--input-root", str(inputs))
    rows = rows_by_path(batch_wrapper.run([str(inputs / n) for n in "abc"]))
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["value"]["pid"] != rows["b"]["value"]["pid"]


def test_worker_mode_reuses_one_r_process_until_a_file_fails(entry, behaviour_script, write_inputs) -> None:
    inputs = write_inputs({"a": "fine", "b": "fine", "c": "error", "d": "fine"})
    entry("--r-script", str(behaviour_script), "--input-root", str(inputs))
    rows = rows_by_path(batch_wrapper.run([str(inputs / n) for n in "abcd"]))
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


def test_a_file_that_leads_out_of_the_dataset_root_is_never_read_and_fails_alone(entry, tmp_path: Path) -> None:
    """A link made after registration (or inside the mount), to a file or through a folder outside the root: the file
    fails alone with a record saying where it leads; R never sees it, so nothing of it reaches results/."""
    inputs = tmp_path / "inputs"
    secret = write_png(str(tmp_path / "elsewhere" / "secret.png"))
    good = write_png(str(inputs / "good.png"))
    (inputs / "x.png").symlink_to(secret)
    (inputs / "all").symlink_to(tmp_path / "elsewhere")
    (inputs / "inside.png").symlink_to(inputs / "good.png")
    output = entry("--input-root", str(inputs))
    rows = rows_by_path(
        batch_wrapper.run([good, str(inputs / "x.png"), str(inputs / "all" / "secret.png"), str(inputs / "inside.png")])
    )
    assert sorted(rows) == ["good.png", "inside.png"]
    for relative in ("x.png", "all/secret.png"):
        record = json.loads((output / "failures" / f"{relative}.json").read_text())
        assert record["kind"] == "outside_input"
        assert f"it leads to {os.path.realpath(secret)}, outside the input folder" in record["error"]
        assert not (output / "results" / relative).exists()


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
    message = r"pass --output-dir \(or set AZUREML_BI_OUTPUT_PATH\), or both --results-dir and --failures-dir"
    with pytest.raises(ValueError, match=message):
        batch_wrapper.parse_config(["--r-script", str(EXAMPLE_R_SCRIPT), "--input-root", "/data"])
    with pytest.raises(ValueError, match=message):  # one of the two is not enough
        batch_wrapper.parse_config(["--input-root", "/data", "--results-dir", "/out/results"])


def test_results_and_failures_go_to_folders_of_their_own_when_given(entry, tmp_path, monkeypatch) -> None:
    """The v2 engine mounts results/ and failures/ as two outputs (--results-dir, --failures-dir): no output dir
    needed, and a result row still names its outputs relative to the run's output folder."""
    monkeypatch.delenv("AZUREML_BI_OUTPUT_PATH")
    inputs = tmp_path / "inputs"
    good = write_png(str(inputs / "a" / "good.png"))
    (inputs / "bad.png").write_bytes(b"not a png")
    results, failures = tmp_path / "mounts" / "results", tmp_path / "mounts" / "failures"
    results.mkdir(parents=True)
    failures.mkdir()  # a mounted folder exists, empty, from the start
    entry("--results-dir", str(results), "--failures-dir", str(failures))
    rows = rows_by_path(batch_wrapper.run([good, str(inputs / "bad.png")]))
    assert rows["a/good.png"]["outputs"] == ["results/a/good.png/stats.json", "results/a/good.png/thumbnail.png"]
    assert sorted(os.listdir(results / "a" / "good.png")) == ["stats.json", "thumbnail.png"]
    assert json.loads((failures / "bad.png.json").read_text())["relative_path"] == "bad.png"
    assert not (tmp_path / "output").exists()


def test_a_missing_dataset_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no dataset root: pass --input-root DIR .* or --input-name NAME"):
        batch_wrapper.parse_config(["--output-dir", str(tmp_path)])


def test_runtime_arguments_are_ignored_and_r_args_keep_leading_dashes(tmp_path: Path) -> None:
    config = batch_wrapper.parse_config(
        [
            *RUNTIME_ARGS,
            "--output-dir",
            str(tmp_path),
            "--input-root",
            "/data",
            "--r-arg=--flag",
            "--r-arg",
            "value with space",
        ]
    )
    assert config.r_args == ("--flag", "value with space")
    assert config.output_dir == str(tmp_path)
    assert config.r_mode == "worker" and config.file_timeout == 300
    assert config.logging_level == "INFO"  # Azure's default when the driver passes none


def test_the_runtimes_logging_level_sets_the_entry_scripts_own(tmp_path: Path) -> None:
    base = [*RUNTIME_ARGS, "--output-dir", str(tmp_path), "--input-root", "/data"]
    assert batch_wrapper.parse_config([*base, "--logging_level", "DEBUG"]).logging_level == "DEBUG"
    with pytest.raises(ValueError, match="--logging_level must be a level of Python's logging"):
        batch_wrapper.parse_config([*base, "--logging_level", "LOUD"])


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
    explicit = batch_wrapper.parse_config(
        ["--output-dir", str(tmp_path), "--input-name", "input_files", "--input-root", "/data"]
    )
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


def test_any_failed_file_name_gets_a_failure_record_and_never_fails_the_other_files(
    entry, behaviour_script, tmp_path
) -> None:
    """Names that cannot be a record's file name as such: not UTF-8, too long for the file system once
    ".json" is added, or colliding with another input's folder (``a`` and ``a.json/b``)."""
    inputs = tmp_path / "inputs"
    names = [os.fsdecode(b"latin1-\xe9t\xe9.png"), "n" * 250, "a", "a.json/b", "good1", "good2"]
    for name in names:
        path = inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("fine\n" if name.startswith("good") else "error\n")
    output = entry("--r-script", str(behaviour_script), "--input-root", str(inputs))
    rows = rows_by_path(batch_wrapper.run([str(inputs / name) for name in names]))
    assert set(rows) == {"good1", "good2"}
    records = {}
    for path in (output / "failures").rglob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[record["relative_path"]] = record
    assert set(records) == set(names[:4]) and all(r["kind"] == "r_error" for r in records.values())
    from azureml_parallel_r.models import failure_key

    keys = {
        failure_key(str(p.relative_to(output / "failures")), json.loads(p.read_text()))
        for p in (output / "failures").rglob("*.json")
    }
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
