"""Helpers for engine tests: tiny Python entry scripts and job specs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from azureml_parallel_r.engine.job import JobSpec, new_run_id
from azureml_parallel_r.run_settings import ParallelRunSettings

# An entry script whose behaviour per file comes from the file's content; it records every init()/run().
TINY_ENTRY = """
import argparse, json, os, sys, time

STATE = {}

def init():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events")
    args, _ = parser.parse_known_args()
    STATE["events"] = args.events
    _event("init")
    print("entry script noise on stdout", flush=True)
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init exploded: " + os.environ["FAIL_INIT"])

def _event(kind, **extra):
    with open(os.path.join(STATE["events"], f"{os.getpid()}.jsonl"), "a") as handle:
        handle.write(json.dumps({"event": kind, "pid": os.getpid(), **extra}) + "\\n")

def run(mini_batch):
    _event("run", files=[os.path.basename(p) for p in mini_batch])
    rows = []
    for path in mini_batch:
        action = open(path).read().strip()
        if action == "raise":
            raise ValueError("run raised for " + os.path.basename(path))
        if action == "sleep":
            time.sleep(60)
        if action.startswith("flaky:"):  # fails until its counter file reaches N tries
            counter = path + ".tries"
            tries = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
            open(counter, "w").write(str(tries))
            if tries < int(action.split(":")[1]):
                raise RuntimeError("flaky failure %d" % tries)
        if action == "skip":
            continue
        rows.append(os.path.basename(path) + (" multi\\nline" if action == "newline" else ""))
    return rows

def shutdown():
    _event("shutdown")
"""


@pytest.fixture
def tiny_entry(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    (source / "tiny_entry.py").write_text(textwrap.dedent(TINY_ENTRY))
    return source


@pytest.fixture
def make_spec(tmp_path: Path, tiny_entry: Path, write_inputs) -> Callable[..., JobSpec]:
    """Return a function building a JobSpec over ``{name: action}`` inputs with the tiny entry script."""

    def make(files: dict[str, str], entry_script: str = "tiny_entry.py", **settings) -> JobSpec:
        inputs = write_inputs(files)
        events = tmp_path / "events"
        events.mkdir(exist_ok=True)
        settings.setdefault("process_count_per_node", 1)
        settings.setdefault("file_timeout", None)  # not our entry script: no per-file limit to check against
        return JobSpec(
            run_id=new_run_id(),
            input_dir=str(inputs),
            output_dir=str(tmp_path / "output"),
            entry_script=entry_script,
            source_dir=str(tiny_entry),
            logs_dir=str(tmp_path / "output" / "logs"),
            entry_args=("--events", str(events)),
            settings=ParallelRunSettings(**settings),
        )

    return make


def read_events(tmp_path: Path) -> list[dict]:
    import json

    events = []
    for path in sorted((tmp_path / "events").glob("*.jsonl")):
        events.extend(json.loads(line) for line in path.read_text().splitlines())
    return events
