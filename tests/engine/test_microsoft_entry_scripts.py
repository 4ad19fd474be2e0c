"""The local engine runs entry scripts in the shapes Microsoft publishes, and produces what Microsoft's docs say the
runtime produces. Each script below names the sample it models; each test cites the page that says what is expected.

Pages cited:
- TSG: Troubleshooting the ParallelRunStep, https://learn.microsoft.com/azure/machine-learning/v1/how-to-debug-parallel-run-step
- BATCH: Author scoring scripts for batch deployments,
  https://learn.microsoft.com/azure/machine-learning/how-to-batch-scoring-script ("There's no requirement about the
  cardinality of the results ... All elements in the result DataFrame or array are written to the output file")
- YAML: CLI (v2) parallel job YAML schema, https://learn.microsoft.com/azure/machine-learning/reference-yaml-job-parallel
- AUTOML: azureml-train-automl-runtime's AutoMLPipelineBuilder.get_many_models_batch_inference_steps, which writes
  parallel_run_step.settings.json ({"append_row": {"pandas.DataFrame.to_csv": {"sep": ","}}})
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from azureml_parallel_r import status
from azureml_parallel_r.engine.runtime import ParallelRunJob

pytestmark = pytest.mark.integration

# Models azureml-examples cli/endpoints/batch/deploy-models/heart-classifier-mlflow/deployment-custom/code/
# batch_driver.py: run() reads each CSV file of the mini-batch, predicts a column with a model loaded in init() and
# returns one DataFrame with a row per CSV row (many per file) and the file's name; it logs with print() and logging.
HEART_CLASSIFIER = """
import argparse, glob, json, logging, os
import pandas as pd

def init():
    global model
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--model", type=str)
    args, _ = parser.parse_known_args()
    with open(os.path.join(args.model, "model.json")) as handle:  # a tiny local model: a threshold on one column
        model = json.load(handle)
    logging.info("model loaded: %s", model)

def run(mini_batch):
    print(f"run method start: {__file__}, run({len(mini_batch)} files)")
    data = pd.concat(map(lambda fp: pd.read_csv(fp).assign(filename=os.path.basename(fp)), mini_batch))
    pred = (data[model["column"]] > model["threshold"]).astype(int).rename("prediction")
    return pd.concat([data.reset_index(drop=True), pred.reset_index(drop=True)], axis=1)
"""

# Models MachineLearningNotebooks how-to-use-azureml/machine-learning-pipelines/parallel-run/Code/
# digit_identification.py
# with the EntryScript helper as the TSG uses it: a list of strings, one per input, the logger, log_dir and agent_name
# naming a per-process file, and a file written to the output folder (AZUREML_BI_OUTPUT_PATH, EntryScript.output_dir).
DIGITS = """
import os
from pathlib import Path
from azureml_user.parallel_run import EntryScript

def init():
    entry_script = EntryScript()
    entry_script.logger.info("This will show up in files under logs/user on the Azure portal.")
    log_dir = Path(entry_script.log_dir)  # logs/user/entry_script_log/<node_id>/.
    log_dir.mkdir(parents=True, exist_ok=True)
    proc_name = entry_script.agent_name  # The process name in pattern "processNNN".
    (log_dir / f"{proc_name}_demo_stdout.txt").write_text("written by " + proc_name)

def run(mini_batch):
    entry_script = EntryScript()
    entry_script.logger.info(f"{__file__}: {mini_batch}.")
    output_dir = Path(entry_script.output_dir)
    results = []
    for image in mini_batch:
        digit = len(open(image).read().strip()) % 10
        (output_dir / (os.path.basename(image) + ".digit")).write_text(str(digit))
        results.append("{}: {}".format(os.path.basename(image), digit))
    return results
"""

# The TSG's init() retry rule, for a transient failure: the first process of the node fails its init() once.
FLAKY_INIT = """
import os
from azureml_user.parallel_run import EntryScript

def init():
    marker = os.path.join(os.environ["MARKERS"], "init-failed-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("model store not reachable yet (transient)")

def run(mini_batch):
    return [EntryScript().agent_name + " " + os.path.basename(p) for p in mini_batch]
"""


@pytest.fixture
def job(tmp_path: Path, write_inputs):
    """Return a function running an entry script (source code, inputs, settings) to its end: (status, state, spec)."""

    def run(
        code: str,
        files: dict[str, str],
        *,
        entry_args: tuple[str, ...] = (),
        extra: dict[str, str] | None = None,
        **settings: object,
    ) -> tuple[str, dict, object]:
        from azureml_parallel_r.engine.job import JobSpec, new_run_id
        from azureml_parallel_r.run_settings import ParallelRunSettings

        source = tmp_path / "src"
        source.mkdir(exist_ok=True)
        (source / "entry.py").write_text(textwrap.dedent(code))
        for name, content in (extra or {}).items():
            (source / name).write_text(content)
        settings.setdefault("process_count_per_node", 1)
        settings.setdefault("file_timeout", None)
        spec = JobSpec(
            run_id=new_run_id(),
            input_dir=str(write_inputs(files)),
            output_dir=str(tmp_path / "output"),
            entry_script="entry.py",
            source_dir=str(source),
            logs_dir=str(tmp_path / "output" / "logs"),
            entry_args=entry_args,
            settings=ParallelRunSettings(**settings),
        )
        final = ParallelRunJob(spec, progress_interval=0.2).run()
        return final, json.loads(Path(spec.logs_dir, "status.json").read_text()), spec

    return run


def _rows(spec) -> list[str]:
    return Path(spec.output_dir, spec.settings.append_row_file_name).read_text().splitlines()


def _model(tmp_path: Path) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"column": "chol", "threshold": 240}))
    return str(folder)


HEARTS = {
    "a.csv": "age,chol\n63,233\n37,250\n41,204",
    "b.csv": "age,chol\n56,236\n57,354",
    "c.csv": "age,chol\n44,263",
}


def test_a_dataframe_with_many_rows_per_file_is_written_whole(job, tmp_path: Path) -> None:
    """BATCH: "no requirement about the cardinality of the results ... All elements in the result DataFrame ... are
    written"; YAML: append_row_to "Aggregate all returns from each run of mini-batch". Without a settings file the
    rows are space-separated without column names (AUTOML's docstring for a .txt rows file). Items succeed one per
    input file, as counted by the runtime's rule (TSG: each returned element indicates one successful input)."""
    final, state, spec = job(HEART_CLASSIFIER, HEARTS, entry_args=("--model", _model(tmp_path)), mini_batch_size=2)
    assert final == status.FINISHED, state["message"]
    assert sorted(_rows(spec)) == sorted(
        [
            "63 233 a.csv 0",
            "37 250 a.csv 1",
            "41 204 a.csv 0",
            "56 236 b.csv 0",
            "57 354 b.csv 1",
            "44 263 c.csv 1",
        ]
    )
    assert state["counts"]["succeeded_files"] == 3 and state["counts"]["failed_files"] == 0


def test_the_settings_file_of_microsofts_builders_sets_the_separator_and_index(job, tmp_path: Path) -> None:
    """AUTOML writes {"append_row": {"pandas.DataFrame.to_csv": {"sep": ","}}} for a .csv rows file; azureml-examples'
    text-to-image scoring files add "index": true. The rows are DataFrame.to_csv with those arguments."""
    settings = {"append_row": {"pandas.DataFrame.to_csv": {"sep": ",", "index": True}}}
    final, state, spec = job(
        HEART_CLASSIFIER,
        {"c.csv": HEARTS["c.csv"]},
        entry_args=("--model", _model(tmp_path)),
        extra={"parallel_run_step.settings.json": json.dumps(settings)},
        append_row_file_name="aggregated_returns.csv",
    )
    assert final == status.FINISHED, state["message"]
    assert _rows(spec) == ["0,44,263,c.csv,1"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"append_row": {"pandas.DataFrame.to_csv": {"sep": ",", "header": True}}}, "passes header to"),
        ({"append_row": {"pandas.DataFrame.to_csv": {"sep": ";;"}}}, '"sep" must be one character'),
        ({"append_row": {"pandas.DataFrame.to_json": {}}}, "the local engine models"),
    ],
)
def test_a_settings_file_asking_what_no_source_describes_is_refused(job, tmp_path, settings, message) -> None:
    final, state, _spec = job(
        HEART_CLASSIFIER,
        {"c.csv": HEARTS["c.csv"]},
        entry_args=("--model", _model(tmp_path)),
        extra={"parallel_run_step.settings.json": json.dumps(settings)},
    )
    assert final == status.FAILED and "parallel_run_step.settings.json" in state["message"]
    assert message in state["message"]


def test_python_logging_reaches_the_stdout_log_at_info(job, tmp_path: Path) -> None:
    """TSG, "Where does the message from Python logging sink to?": a handler on the root logger sinks it to
    logs/user/stdout/<node_id>/processNNN.stdout.txt, at INFO by default; print() goes there too."""
    final, _state, spec = job(HEART_CLASSIFIER, {"c.csv": HEARTS["c.csv"]}, entry_args=("--model", _model(tmp_path)))
    assert final == status.FINISHED
    stdout = Path(spec.logs_dir, "user", "stdout", "0", "process000.stdout.txt").read_text()
    assert "model loaded: {'column': 'chol', 'threshold': 240}" in stdout and "run method start:" in stdout


def test_entry_script_helper_logs_agent_name_and_log_dir_where_the_docs_put_them(job) -> None:
    """TSG: EntryScript's logger writes logs/user/entry_script_log/<node_id>/<process_name>.log.txt; log_dir is that
    folder; agent_name is "The process name in pattern processNNN"; output_dir is the step's output folder; and
    logs/sys/job_report/processed_mini-batches.csv has each mini-batch's result, node id and process name."""
    final, state, spec = job(DIGITS, {"1.png": "x", "2.png": "xx", "3.png": "xxx"}, mini_batch_size=2)
    assert final == status.FINISHED, state["message"]
    assert sorted(_rows(spec)) == ["1.png: 1", "2.png: 2", "3.png: 3"]
    assert Path(spec.output_dir, "2.png.digit").read_text() == "2"
    entry_logs = Path(spec.logs_dir, "user", "entry_script_log", "0")
    assert "This will show up in files under logs/user" in (entry_logs / "process000.log.txt").read_text()
    assert (entry_logs / "process000_demo_stdout.txt").read_text() == "written by process000"
    with open(Path(spec.logs_dir, "sys", "job_report", "processed_mini-batches.csv"), newline="") as handle:
        report = list(csv.DictReader(handle))
    assert sorted((r["mini_batch_id"], r["node_id"], r["process_name"], r["result"]) for r in report) == [
        ("0", "0", "process000", "Succeeded"),
        ("1", "0", "process000", "Succeeded"),
    ]


def test_a_transient_init_failure_does_not_end_the_run(job, tmp_path: Path) -> None:
    """TSG, "What happens if init function in entry script fails?": the runtime retries init() ("to give chance for
    recovery from transient issues"); the replacement is a new process, with its own processNNN logs."""
    markers = tmp_path / "markers"
    markers.mkdir()
    final, state, spec = job(FLAKY_INIT, {"a": "1", "b": "2"}, environment_variables={"MARKERS": str(markers)})
    assert final == status.FINISHED, state["message"]
    assert sorted(_rows(spec)) == ["process001 a", "process001 b"]
    stdout = sorted(p.name for p in Path(spec.logs_dir, "user", "stdout", "0").iterdir())
    assert stdout == ["process000.stdout.txt", "process001.stdout.txt"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def run(mini_batch):\n    yield from mini_batch\n", "is a generator"),
        ("def run(mini_batch, mini_batch_context):\n    return []\n", "is for partition_keys"),
    ],
)
def test_what_the_engine_does_not_model_is_refused_at_once_saying_so(job, code: str, message: str) -> None:
    final, state, spec = job(code, {"a": "1"})
    assert final == status.FAILED and message in state["message"]
    assert "the entry script cannot run on the local engine" in state["message"]
    assert sorted(p.name for p in Path(spec.logs_dir, "user", "stdout", "0").iterdir()) == ["process000.stdout.txt"]


def test_a_tabular_input_is_refused_saying_so(job) -> None:
    """azureml-examples cli/jobs/parallel/2a_iris_batch_prediction: an mltable input (an MLTable file with
    read_delimited) hands run() DataFrames, which the local engine does not model."""
    final, state, _spec = job(DIGITS, {"MLTable": "paths:\n  - file: ./iris.csv", "iris.csv": "a,b\n1,2"})
    assert final == status.FAILED and "holds an MLTable file: a tabular input" in state["message"]


def test_the_v2_runtimes_predefined_arguments_apply(job) -> None:
    """YAML, "Predefined arguments for parallel job": --error_threshold is the failed items tolerated;
    --allowed_failed_percent the failed mini-batch percent; values outside the allowed ones are an error."""
    code = "def run(mini_batch):\n    return [p for p in mini_batch if not p.endswith('bad')]\n"
    final, state, _ = job(
        code, {"a": "1", "bad": "2"}, entry_args=("--error_threshold", "0"), mini_batch_size=1, run_max_try=1
    )
    assert final == status.FAILED and "more than error_threshold=0" in state["message"]
    final, state, _ = job(code, {"a": "1", "bad": "2"}, entry_args=("--allowed_failed_percent=101",))
    assert final == status.FAILED and "--allowed_failed_percent must be in [0, 100], got 101" in state["message"]


def test_progress_update_timeout_fails_a_run_that_makes_no_progress(job) -> None:
    """YAML: --progress_update_timeout, "If no progress updates receive within this timeout setting, the parallel job
    will be marked as failed"."""
    code = "import time\ndef run(mini_batch):\n    time.sleep(60)\n    return mini_batch\n"
    final, state, _ = job(code, {"a": "1"}, entry_args=("--progress_update_timeout", "1"), run_invocation_timeout=120)
    assert final == status.FAILED and "no mini-batch ended within --progress_update_timeout=1 s" in state["message"]


def test_first_task_creation_timeout_fails_a_run_whose_first_mini_batch_never_starts(job) -> None:
    """YAML: --first_task_creation_timeout, "The timeout in second for monitoring the time between the job start to
    the run of first mini-batch": an init() that never ends keeps the first mini-batch from starting."""
    code = "import time\ndef init():\n    time.sleep(60)\ndef run(mini_batch):\n    return mini_batch\n"
    final, state, _ = job(code, {"a": "1"}, entry_args=("--first_task_creation_timeout", "1"))
    assert final == status.FAILED
    assert "no mini-batch started within --first_task_creation_timeout=1 s" in state["message"]
