"""The v2 pipeline job, asserted on the REST body azure-ai-ml serializes it to (the body of its PUT on jobs/{name})."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azureml_parallel_r.backends.azure.v2_job import job_name, pipeline_job, program_arguments
from azureml_parallel_r.models import DatasetRef, RunRequest
from azureml_parallel_r.run_settings import ParallelRunSettings

INCLUDE = str(Path(__file__).resolve().parents[2] / "include")
RUN_KEY = {"dag_id": "r_parallel_batch", "dag_run_id": "scheduled__2026-01-01", "task_id": "submit", "attempt": "1"}
OUTPUT_URI = "azureml://datastores/workspaceblobstore/paths/r-script-outputs/2026-01-01/20260101T000000Z_ab12cd34/"


def _request(**settings: Any) -> RunRequest:
    return RunRequest(
        dataset=DatasetRef(name="r_inputs", version=3, path="r-script-inputs/2026-01-01", file_count=10),
        output_path="r-script-outputs/2026-01-01/20260101T000000Z_ab12cd34",
        run_key=RUN_KEY,
        r_args=["--thumbnail-size", "64"],
        settings=ParallelRunSettings(**settings),
        experiment_name="r-parallel",
    )


def _body(request: RunRequest) -> dict[str, Any]:
    job = pipeline_job(
        request,
        input_path="azureml:r_inputs_2026-01-01:3",
        output_uri=OUTPUT_URI,
        code_dir=INCLUDE,
        environment="azureml:r-parallel-env:4",
        compute="cpu-cluster",
    )
    return job._to_rest_object().as_dict()


def test_the_parallel_node_carries_the_v1_settings_mapped_to_v2() -> None:
    settings = {
        "mini_batch_size": 25,
        "node_count": 2,
        "process_count_per_node": 3,
        "error_threshold": 7,
        "allowed_failed_count": 4,
        "run_max_try": 3,
        "file_timeout": 60,
        "environment_variables": {"A": "1"},
        "logging_level": "WARNING",
    }
    request = _request(**settings)
    body = _body(request)
    node = body["properties"]["jobs"]["r_parallel_batch"]
    assert node["type"] == "parallel"
    assert node["resources"] == {"instance_count": 2}
    assert node["max_concurrency_per_instance"] == 3
    assert node["mini_batch_size"] == 25
    assert node["error_threshold"] == 7 and node["mini_batch_error_threshold"] == 4
    # the failed-item threshold as the documentation defines it: a program argument the runtime reads
    assert "--error_threshold 7" in node["task"]["program_arguments"]
    # run_max_try counts tries, max_retries counts retries after the first; timeout derived as 25 x 60 + 60
    assert node["retry_settings"] == {"timeout": 1560, "max_retries": 2}
    assert node["environment_variables"] == {"A": "1"}
    assert node["logging_level"] == "WARNING"
    assert node["input_data"] == "${{inputs.input_files}}"
    assert "is_deterministic: false" in str(node["componentId"])  # the anonymous component the node runs


def test_the_task_runs_the_unchanged_entry_script_with_explicit_roots() -> None:
    task = _body(_request())["properties"]["jobs"]["r_parallel_batch"]["task"]
    assert task["type"] == "run_function"
    assert task["code"] == INCLUDE and task["entry_script"] == "entry/batch_wrapper.py"
    assert task["environment"] == "azureml:r-parallel-env:4"
    assert task["append_row_to"] == "${{outputs.rows}}"
    assert task["program_arguments"] == (
        "--r-script r/process_file.r --r-mode worker --file-timeout 300 --input-root ${{inputs.input_files}} "
        "--r-arg=--thumbnail-size --r-arg=64 --results-dir ${{outputs.results}} --failures-dir ${{outputs.failures}} "
        "--error_threshold -1"
    )


def test_input_and_output_bindings() -> None:
    body = _body(_request())["properties"]
    assert body["inputs"]["input_files"] == {
        "uri": "azureml:r_inputs_2026-01-01:3",
        "mode": "ReadOnlyMount",
        "jobInputType": "uri_folder",
    }
    node = body["jobs"]["r_parallel_batch"]
    assert node["inputs"]["input_files"]["value"] == "${{parent.inputs.input_files}}"
    # the run folder's three parts are write mounts of their own, none inside another (no source says that
    # nested write mounts work); the rows file is named by the request (as the runtime writes it: lower-cased)
    assert node["outputs"] == {
        "results": {"uri": f"{OUTPUT_URI}results/", "mode": "ReadWriteMount", "job_output_type": "uri_folder"},
        "failures": {"uri": f"{OUTPUT_URI}failures/", "mode": "ReadWriteMount", "job_output_type": "uri_folder"},
        "rows": {"uri": f"{OUTPUT_URI}parallel_run_step.txt", "mode": "ReadWriteMount", "job_output_type": "uri_file"},
    }
    uris = [output["uri"] for output in node["outputs"].values()]
    assert not [(a, b) for a in uris for b in uris if a != b and b.startswith(a)]
    assert body["computeId"] == "cpu-cluster"


def test_the_job_name_is_derived_from_the_run_key_so_a_retry_finds_its_job() -> None:
    body = _body(_request())
    assert body["name"] == job_name(RUN_KEY) == job_name(dict(reversed(RUN_KEY.items())))
    assert job_name({**RUN_KEY, "attempt": "2"}) != job_name(RUN_KEY)
    assert body["properties"]["tags"] == RUN_KEY and body["properties"]["experimentName"] == "r-parallel"


def test_percent_and_summary_only() -> None:
    node = _body(_request(allowed_failed_percent=12.5, output_action="summary_only"))["properties"]["jobs"][
        "r_parallel_batch"
    ]
    assert node["task"]["program_arguments"].endswith("--allowed_failed_percent 12.5")
    assert "append_row_to" not in node["task"] and set(node["outputs"]) == {"results", "failures"}


def test_unset_processes_per_node_leave_the_services_default_of_one_per_core() -> None:
    node = _body(_request())["properties"]["jobs"]["r_parallel_batch"]
    assert "max_concurrency_per_instance" not in node


@pytest.mark.parametrize("r_arg", ["$HOME", "${{inputs.x}}", "a$(x)", "line\nbreak", "nul\x00", "tab\t"])
def test_an_argument_no_quoting_protects_is_refused_naming_the_character(r_arg: str) -> None:
    """The runtime runs os.path.expandvars on every word after splitting (Microsoft's job control script,
    ParallelRunBackend): a '$' would be expanded whatever its quotes; control characters cannot travel on the line."""
    request = _request_with(r_args=[r_arg])
    bad = next(c for c in r_arg if c == "$" or ord(c) < 32)
    with pytest.raises(ValueError, match=re.escape(f"holds {bad!r}, which no quoting protects")):
        program_arguments(request)


_PRINTABLE_BUT_DOLLAR = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="$"))


@settings(max_examples=300, deadline=None)
@given(r_args=st.lists(_PRINTABLE_BUT_DOLLAR, max_size=6), r_script=_PRINTABLE_BUT_DOLLAR.filter(bool))
def test_every_argument_reaches_the_entry_script_unchanged_as_the_runtime_splits_the_line(
    r_args: list[str], r_script: str
) -> None:
    """Shell syntax (';', '|', '>', '&&', '<(', '{a,b}', quotes, spaces, backslashes) is plain text: the runtime's
    shlex.split gives back each argument exactly, the bindings as the service fills them in."""
    request = _request_with(r_args=r_args, r_script=r_script)
    words = shlex.split(program_arguments(request))
    expected = request.entry_arguments(input_root="${{inputs.input_files}}")
    assert words[: len(expected)] == expected
    assert words[len(expected) :] == [
        "--results-dir",
        "${{outputs.results}}",
        "--failures-dir",
        "${{outputs.failures}}",
        "--error_threshold",
        "-1",
    ]


def test_shell_syntax_in_r_args_is_quoted_not_refused() -> None:
    request = _request_with(r_args=["a;b", "x|y", "> out", "&&", "<(cat)", "{a,b}", "it's", 'say "hi"', "a\\b"])
    line = program_arguments(request)
    assert [word for word in shlex.split(line) if word.startswith("--r-arg=")] == [
        f"--r-arg={a}" for a in request.r_args
    ]
    assert "'--r-arg=a;b'" in line and "'--r-arg=> out'" in line


def _request_with(**fields: Any) -> RunRequest:
    import dataclasses

    return dataclasses.replace(_request(), **fields)


def test_an_invocation_timeout_beyond_the_v2_bound_is_refused_before_anything_is_created() -> None:
    from azureml_parallel_r.backends.azure.v2_job import check_run

    check_run(_request(run_invocation_timeout=259200))
    with pytest.raises(ValueError, match=r"run_invocation_timeout=259201 s is above the 259200 s the v2 parallel job"):
        check_run(_request(run_invocation_timeout=259201))
    with pytest.raises(ValueError, match="no quoting protects"):
        check_run(_request_with(r_args=["$HOME"]))
