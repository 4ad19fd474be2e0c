"""JobSpec persistence and run ids."""

from __future__ import annotations

import re
from pathlib import Path

from azureml_parallel_r.engine.job import JobSpec, new_run_id, read_json, write_json
from azureml_parallel_r.run_settings import ParallelRunSettings


def test_run_ids_are_unique_and_azure_like() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"local_\d{8}_\d{6}_[0-9a-f]{8}", run_id) for run_id in ids)


def test_spec_round_trips_through_its_logs_folder(tmp_path: Path) -> None:
    spec = JobSpec(
        run_id="local_x",
        input_dir="/in",
        output_dir="/out",
        entry_script="entry/batch_wrapper.py",
        source_dir="/src",
        logs_dir=str(tmp_path / "logs"),
        entry_args=("--r-arg=--x", "ü"),
        settings=ParallelRunSettings(mini_batch_size=3, environment_variables={"A": "1"}),
    )
    assert JobSpec.load(spec.save()) == spec
    assert spec.entry_script_path == "/src/entry/batch_wrapper.py"


def test_json_files_are_replaced_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "s.json")
    assert read_json(path) is None
    write_json(path, {"status": "Running"})
    write_json(path, {"status": "Finished"})
    assert read_json(path) == {"status": "Finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
