"""The local backend: dataset registry, submit/status/cancel/reattach, results, datastore confinement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.backends.local import LocalBackend, RunNotFoundError
from azureml_parallel_r.examples.samples import write_png
from azureml_parallel_r.inputs import InputFolderError
from azureml_parallel_r.models import DatasetFilesMissingError, RunRequest
from azureml_parallel_r.output_checks import failed_files, validate_outputs
from tests.waiting import wait_for_end

TAGS = {"logical_date": "2026-11-24", "dag_id": "d", "dag_run_id": "r", "task_id": "t"}


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(str(tmp_path), process_count_per_node=2)


def _inputs(root: Path, date: str = "2026-11-24", names=("a.png", "sub/b.png")) -> str:
    for i, name in enumerate(names):
        write_png(str(root / "r-script-inputs" / date / name), 8, 8, seed=i)
    return f"r-script-inputs/{date}"


def test_registering_the_same_path_and_date_reuses_the_version(backend: LocalBackend, tmp_path: Path) -> None:
    path = _inputs(tmp_path)
    first = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    again = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    other_date = backend.register_file_dataset(path, name="inputs", tags={**TAGS, "logical_date": "2026-11-25"})
    assert (first.version, first.file_count, first.reused) == (1, 2, False)
    assert (again.version, again.reused) == (1, True)
    assert other_date.version == 2
    assert backend.list_dataset_files(first) == ["a.png", "sub/b.png"]


def test_empty_or_missing_folders_register_nothing(backend: LocalBackend, tmp_path: Path) -> None:
    (tmp_path / "r-script-inputs" / "empty").mkdir(parents=True)
    assert backend.register_file_dataset("r-script-inputs/empty", name="n", tags=TAGS).file_count == 0
    missing = backend.register_file_dataset("r-script-inputs/nope", name="n", tags=TAGS)
    assert (missing.file_count, missing.version) == (0, 0)
    assert backend.list_dataset_files(missing) == []


def test_paths_outside_the_datastore_are_refused(backend: LocalBackend) -> None:
    with pytest.raises(ValueError, match="leaves the datastore root"):
        backend.register_file_dataset("../../etc", name="n", tags=TAGS)


def test_a_link_out_of_the_input_folder_is_never_registered(backend: LocalBackend, tmp_path: Path) -> None:
    path = _inputs(tmp_path)
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / path / "x.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InputFolderError, match=r"x.txt is a link to .*secret.txt, outside the input folder"):
        backend.register_file_dataset(path, name="inputs", tags=TAGS)
    assert not (tmp_path / ".azureml-local" / "datasets" / "inputs.json").exists()
    (tmp_path / path / "x.txt").unlink()
    first = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    (tmp_path / path / "a.png").unlink()  # replaced by a link out of the folder before a repair registers it
    (tmp_path / path / "a.png").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InputFolderError, match=r"a.png \(a link to .*secret.txt\)"):
        backend.register_file_subset(path, ["a.png"], name="inputs", tags={**TAGS, "dag_run_id": "repair"})
    assert first.file_count == 2


@pytest.mark.integration
def test_submit_run_reattach_and_collect_results(backend: LocalBackend, tmp_path: Path) -> None:
    path = _inputs(tmp_path, names=("a.png", "sub/b.png", "bad.png"))
    (tmp_path / path / "bad.png").write_text("corrupt")
    dataset = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    key = {"dag_id": "d", "dag_run_id": "r", "task_id": "t"}
    assert backend.find_run(key) is None
    request = RunRequest(dataset=dataset, output_path="r-script-outputs/2026-11-24/{run-id}", run_key=key)
    ref = backend.submit(request)
    assert ref.output_path == f"r-script-outputs/2026-11-24/{ref.run_id}" and ref.engine == "local"
    assert ref.url.startswith("file://")
    found = backend.find_run(key)
    assert found is not None and found.run_id == ref.run_id and found.reattached
    state = wait_for_end(backend, ref.run_id)
    assert state.status == status.FINISHED and state.counts["failed_files"] == 1
    results = backend.fetch_results(ref.run_id)
    assert sorted(json.loads(row)["relative_path"] for row in results.rows) == ["a.png", "sub/b.png"]
    assert list(results.failures) == ["bad.png"] and "not in PNG format" in results.failures["bad.png"]["error"]
    assert "results/sub/b.png/thumbnail.png" in results.output_files
    assert results.logs["job_result.txt"].startswith("Finished: 2/3 files succeeded")
    location = backend.write_output_file(ref.run_id, "validation.json", b"{}")
    assert Path(location) == tmp_path / ref.output_path / "validation.json"


@pytest.mark.integration
def test_a_failed_or_canceled_run_is_not_reattached(backend: LocalBackend, tmp_path: Path, write_r_script) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n")
    dataset = backend.register_file_dataset(_inputs(tmp_path), name="inputs", tags=TAGS)
    key = {"dag_id": "d", "dag_run_id": "r2", "task_id": "t"}
    ref = backend.submit(RunRequest(dataset=dataset, output_path="out/{run-id}", run_key=key, r_script=str(script)))
    assert backend.cancel(ref.run_id).status == status.CANCELED
    assert backend.find_run(key) is None


@pytest.mark.integration
def test_a_run_is_reattached_only_by_its_own_key_and_records_its_dataset_version(
    backend: LocalBackend, tmp_path: Path, write_r_script
) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) NULL\n")
    dataset = backend.register_file_dataset(_inputs(tmp_path), name="inputs", tags=TAGS)
    key = {"dag_id": "d", "dag_run_id": "r3", "task_id": "t", "dataset": "inputs:1", "attempt": "1", "submission": "s1"}
    ref = backend.submit(RunRequest(dataset=dataset, output_path="out/{run-id}", run_key=key, r_script=str(script)))
    assert backend.find_run(key).run_id == ref.run_id
    assert backend.find_run({**key, "submission": "another-airflow"}) is None
    assert backend.find_run({**key, "dataset": "inputs:2"}) is None
    assert backend.fetch_results(ref.run_id).dataset == {"name": "inputs", "version": 1}
    backend.cancel(ref.run_id)


@pytest.mark.integration
def test_a_run_processes_exactly_the_registered_files(backend: LocalBackend, tmp_path: Path, write_r_script) -> None:
    """A file added to the folder between register_dataset and the run is not part of that run (it waits for the
    next dataset version); a registered file deleted since fails alone."""
    from azureml_parallel_r.output_checks import validate_outputs

    script = write_r_script(
        "process_file <- function(input_path, output_dir, args) {\n"
        "  if (!file.exists(input_path)) stop('no such file: ', input_path)\n"
        "  file.size(input_path)\n"
        "}\n"
    )
    path = _inputs(tmp_path, names=("a.png", "sub/b.png", "gone.png"))
    dataset = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    (tmp_path / path / "late.png").write_text("added after registration")
    (tmp_path / path / "gone.png").unlink()
    key = {"dag_id": "d", "dag_run_id": "r5", "task_id": "t"}
    ref = backend.submit(RunRequest(dataset=dataset, output_path="out/{run-id}", run_key=key, r_script=str(script)))
    wait_for_end(backend, ref.run_id)
    results = backend.fetch_results(ref.run_id)
    assert sorted(json.loads(row)["relative_path"] for row in results.rows) == ["a.png", "sub/b.png"]
    assert list(results.failures) == ["gone.png"]
    assert not (tmp_path / ref.output_path / "results" / "late.png").exists()
    report = validate_outputs(backend.list_dataset_files(dataset), results, allowed_failures=1, dataset=dataset)
    assert report.passed and report.notes == [], report


def test_unknown_run_ids_are_clear_errors(backend: LocalBackend) -> None:
    with pytest.raises(RunNotFoundError, match="no local run 'nope'"):
        backend.get_status("nope")


def test_a_folder_whose_files_changed_gets_a_new_version_and_the_old_one_keeps_its_files(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """Clearing a DAG run processes the folder as it is now; a file added later is never part of (nor an
    allowed failure of) the version an earlier run processed."""
    path = _inputs(tmp_path)
    first = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    (tmp_path / path / "late.png").write_bytes(b"added after the first run")
    second = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    assert (first.version, second.version, second.reused, second.file_count) == (1, 2, False, 3)
    assert backend.list_dataset_files(first) == ["a.png", "sub/b.png"]
    assert backend.list_dataset_files(second) == ["a.png", "late.png", "sub/b.png"]
    assert backend.register_file_dataset(path, name="inputs", tags=TAGS).reused


@pytest.mark.integration
def test_inputs_changed_after_registration_are_counted_failed_by_validation(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """One file appended to, one rewritten with its size kept (only its modification time tells), between
    register_dataset and the run: the run reads what is there, so validation counts both failed, saying why, and a
    repair would rerun them."""
    import os

    path = _inputs(tmp_path, names=("a.png", "sub/b.png", "c.png"))
    dataset = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    grown = tmp_path / path / "a.png"
    grown.write_bytes(grown.read_bytes() + b"appended")
    same = tmp_path / path / "sub" / "b.png"
    info = same.stat()
    os.utime(same, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    registered = backend.registered_files(dataset)
    changed = backend.changed_files(dataset, registered)
    assert sorted(changed) == ["a.png", "sub/b.png"]
    ref = backend.submit(RunRequest(dataset=dataset, output_path="out/{run-id}", run_key={"k": "changed"}))
    wait_for_end(backend, ref.run_id)
    results = backend.fetch_results(ref.run_id)
    report = validate_outputs(registered.files, results, allowed_failures=5, dataset=dataset, changed=changed)
    assert report.counts.succeeded == 1 and report.counts.failed == 2
    assert {f["relative_path"]: f["kind"] for f in report.all_failures} == {
        "a.png": "input_changed",
        "sub/b.png": "input_changed",
    }
    assert "2 input file(s) changed after the dataset was registered" in report.notes[0]
    assert failed_files(registered.files, results.rows, changed) == ["a.png", "sub/b.png"]


def test_without_its_registered_file_list_a_version_has_no_files_to_stand_in(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The list deleted (or archived away): the folder's current files are not the run's, so nothing stands in."""
    path = _inputs(tmp_path)
    dataset = backend.register_file_dataset(path, name="inputs", tags=TAGS)
    (tmp_path / ".azureml-local" / "datasets" / "inputs" / "v1.files.json").unlink()
    with pytest.raises(
        DatasetFilesMissingError,
        match=r"registered file list of dataset inputs v1 \(.*v1.files.json\)"
        r" is gone",
    ):
        backend.list_dataset_files(dataset)


def test_a_run_folders_own_files_are_read_and_nothing_outside_it(backend: LocalBackend, tmp_path: Path) -> None:
    """read_output_text (the run report's validation-failures.jsonl): a file name of the folder, never a path."""
    folder = backend.root / "r-script-outputs" / "2026-11-24" / "run-1"
    folder.mkdir(parents=True)
    (folder / "validation-failures.jsonl").write_text("{}\n")
    assert backend.read_output_text("r-script-outputs/2026-11-24/run-1", "validation-failures.jsonl") == "{}\n"
    assert backend.read_output_text("r-script-outputs/2026-11-24/run-1", "absent.jsonl") is None
    for name in ("../run-2/validation.json", "..", "", "a\\b"):
        with pytest.raises(ValueError, match="not a file name of an output folder"):
            backend.read_output_text("r-script-outputs/2026-11-24/run-1", name)
    for output_path in ("../outside", "/etc", "r-script-outputs/../../x"):
        with pytest.raises(ValueError, match="the run's output folder"):
            backend.read_output_text(output_path, "passwd")


def test_the_failure_records_so_far_are_counted_from_a_listing(backend: LocalBackend) -> None:
    """count_output_files (the run report's progress): records at any depth, not a record being written, and only a
    folder of the run's own."""
    failures = backend.root / "r-script-outputs" / "2026-11-24" / "run-1" / "failures"
    (failures / "camera-a" / "deep").mkdir(parents=True)
    for name in ("a.png.json", "camera-a/b.png.json", "camera-a/deep/c.png.json", "d.png.json.0f3a.tmp"):
        (failures / name).write_text("{}")
    assert backend.count_output_files("r-script-outputs/2026-11-24/run-1", "failures") == 3
    assert backend.count_output_files("r-script-outputs/2026-11-24/run-2", "failures") == 0  # none written yet
    for folder in ("../run-2", "..", "", "failures/camera-a"):
        with pytest.raises(ValueError, match="not a folder name of an output folder"):
            backend.count_output_files("r-script-outputs/2026-11-24/run-1", folder)


def test_a_local_r_that_is_not_the_compute_images_is_said_with_both_versions(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from azureml_parallel_r.backends.azure import environment

    here = subprocess.run(
        ["Rscript", "--vanilla", "-e", "cat(R.version$major, R.version$minor, sep = '.')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    request = RunRequest(dataset=None, output_path="out", run_key={})  # type: ignore[arg-type]
    monkeypatch.setattr(environment, "IMAGE_R_VERSION", "4.1.2" if here != "4.1.2" else "4.4.0")
    (warning,) = backend.request_warnings(request)
    assert f"this machine's R is {here}, the Azure ML compute image's is {environment.IMAGE_R_VERSION}" in warning
    monkeypatch.setattr(environment, "IMAGE_R_VERSION", here)
    assert backend.request_warnings(request) == []
