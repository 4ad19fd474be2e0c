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
        spec_fields: dict[str, object] | None = None,
        input_dir: Path | None = None,
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
            input_dir=str(input_dir or write_inputs(files)),
            output_dir=str(tmp_path / "output"),
            entry_script="entry.py",
            source_dir=str(source),
            logs_dir=str(tmp_path / "output" / "logs"),
            entry_args=entry_args,
            settings=ParallelRunSettings(**settings),
            **(spec_fields or {}),
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
        ("def run(mini_batch, mini_batch_context):\n    return []\n", "give the job partition keys"),
    ],
)
def test_what_the_engine_does_not_model_is_refused_at_once_saying_so(job, code: str, message: str) -> None:
    final, state, spec = job(code, {"a": "1"})
    assert final == status.FAILED and message in state["message"]
    assert "the entry script cannot run on the local engine" in state["message"]
    assert sorted(p.name for p in Path(spec.logs_dir, "user", "stdout", "0").iterdir()) == ["process000.stdout.txt"]


# Models azureml-examples cli/jobs/parallel/2a_iris_batch_prediction/script/iris_prediction.py: run(input_data) gets a
# DataFrame of the mltable input (neural-iris-mltable/MLTable: read_delimited) and returns it with a prediction column
# (a rule on one column here, for the MLflow model).
IRIS = """
def init():
    pass

def run(input_data):
    num_rows, num_cols = input_data.shape
    result = input_data.drop(input_data.columns[4:], axis=1)
    result["variety"] = ["Setosa" if width < 1 else "Other" for width in input_data["petal.width"]]
    return result
"""
IRIS_MLTABLE = """paths:
  - file: ./iris.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: utf8
      header: all_files_same_headers
"""

# Models azureml-examples cli/jobs/parallel/1a_oj_sales_prediction/src/parallel_train/parallel_train.py: run(input_data,
# mini_batch_context) gets one Store and Brand's rows, parses --partition_keys (which pipeline.yml does not pass),
# drops the key columns, fits a model per partition (a least-squares line here, for the GradientBoostingRegressor)
# and saves it under --model_folder/<Store>/<Brand>, returning [].
OJ_TRAIN = """
import argparse, json, os
import numpy as np
import pandas as pd

def init():
    parser = argparse.ArgumentParser()
    parser.add_argument("--drop_cols", type=str)
    parser.add_argument("--target_col", type=str)
    parser.add_argument("--date_col", type=str)
    parser.add_argument("--model_folder", type=str)
    parser.add_argument("--partition_keys", type=str)
    args, _ = parser.parse_known_args()
    global target_col, date_col, model_folder, drop_cols, partition_keys
    target_col, date_col, model_folder = args.target_col, args.date_col, args.model_folder
    drop_cols = args.drop_cols.split(",")
    partition_keys = args.partition_keys

def run(input_data, mini_batch_context):
    if not isinstance(input_data, pd.DataFrame):
        raise Exception("Not a valid DataFrame input.")
    print(f"partition_key_value = {mini_batch_context.partition_key_value}")
    input_data[date_col] = pd.to_datetime(input_data[date_col])
    input_data = input_data.set_index(date_col).sort_index(ascending=True)
    input_data = input_data.drop(columns=drop_cols, errors="ignore")
    slope, intercept = np.polyfit(input_data["Price"], input_data[target_col], 1)
    relative_path = os.path.join(model_folder, *list(str(i) for i in mini_batch_context.partition_key_value.values()))
    os.makedirs(relative_path, exist_ok=True)
    with open(os.path.join(relative_path, "model.json"), "w") as handle:
        json.dump({"slope": slope, "rows": len(input_data), "keys": partition_keys,
                   "columns": list(input_data.columns)}, handle)
    return []
"""

# Models MachineLearningNotebooks how-to-use-azureml/machine-learning-pipelines/parallel-run/Code/ partition sample:
# a FileDataset with partition_format "{user}/{season}/{genres}.wav", partition_keys ["user", "genres"]: run(mini_batch,
# mini_batch_context) gets the files of one partition and returns a row per file with its keys.
FILE_PARTITIONS = """
import os

def init():
    print("Init")

def run(mini_batch, mini_batch_context):
    print(f"partition_key_value = {mini_batch_context.partition_key_value}")
    print(f"dataset = {mini_batch_context.dataset}")
    return [
        ",".join([os.path.basename(path), mini_batch_context.partition_key_value["user"],
                  mini_batch_context.partition_key_value["genres"], str(len(mini_batch))])
        for path in mini_batch
    ]
"""


def _iris_rows(count: int) -> str:
    lines = ["sepal.length,sepal.width,petal.length,petal.width"]
    lines += [f"{5 + i % 3}.1,3.5,1.4,{(i % 5) * 0.5}" for i in range(count)]
    return "\n".join(lines)


def test_a_tables_mini_batches_are_dataframes_of_about_mini_batch_size(job) -> None:
    """azureml-examples 2a_iris_batch_prediction, with its settings (mini_batch_size "10kb", append_row): every row
    of the table is scored once, in mini-batches of about 10 KB of the file (YAML: "approximate physical size")."""
    iris = _iris_rows(1000)
    final, state, spec = job(
        IRIS,
        {"MLTable": IRIS_MLTABLE, "iris.csv": iris},
        # pipeline.yml's program_arguments, then its settings
        entry_args=(
            "--allowed_failed_percent",
            "30",
            "--task_overhead_timeout",
            "1200",
            "--progress_update_timeout",
            "600",
            "--first_task_creation_timeout",
            "600",
            "--resource_monitor_interval",
            "20",
        ),
        spec_fields={"table_mini_batch_size": "10kb"},
        node_count=2,
        process_count_per_node=2,
        error_threshold=5,
        allowed_failed_count=5,
        run_max_try=3,
        run_invocation_timeout=60,
        logging_level="DEBUG",
    )
    assert final == status.FINISHED, state["message"]
    rows = _rows(spec)
    assert len(rows) == 1000 and rows[0].split(" ")[-1] in ("Setosa", "Other")
    size = len(iris.encode()) + 1
    assert state["counts"]["total_mini_batches"] == -(-size // (10 * 1024)), state  # ceil(size / 10 KB)
    assert state["counts"]["total_files"] == 1000  # a table counts its rows ("record failures for TabularDataset")


def test_partition_keys_give_each_store_and_brand_its_own_run_call(job, tmp_path: Path) -> None:
    """azureml-examples 1a_oj_sales_prediction with its settings (partition_keys Store, Brand;
    mini_batch_error_threshold 5; the table partitioned as partition_data.py writes it): one run() per partition with
    its rows, the key values in the context (text, from the folder names), --partition_keys in the arguments; run()
    returning [] succeeds."""
    from azureml_parallel_r.examples.samples import make_oj_sales_table

    table = tmp_path / "oj"
    make_oj_sales_table(str(table), stores=2, weeks=10)
    models = tmp_path / "models"
    final, state, _spec = job(
        OJ_TRAIN,
        {},
        input_dir=table,
        entry_args=(
            "--drop_cols",
            "Revenue,Advert,Store,Brand",
            "--target_col",
            "Quantity",
            "--date_col",
            "WeekStarting",
            "--model_folder",
            str(models),
        ),
        spec_fields={"partition_keys": ("Store", "Brand")},
        node_count=2,  # resources.instance_count
        process_count_per_node=2,  # max_concurrency_per_instance
        error_threshold=-1,
        allowed_failed_count=5,  # mini_batch_error_threshold
        run_max_try=3,  # retry_settings.max_retries: 2
        run_invocation_timeout=60,  # retry_settings.timeout
        environment_variables={"AZUREML_PARALLEL_EXAMPLE": "1a_yaml"},
    )
    assert final == status.FINISHED, state["message"]
    assert state["counts"]["total_mini_batches"] == 6
    saved = {str(p.parent.relative_to(models)): json.loads(p.read_text()) for p in models.rglob("model.json")}
    assert sorted(saved) == [
        f"{store}/{brand}" for store in ("1000", "1002") for brand in ("dominicks", "minute.maid", "tropicana")
    ]
    assert saved["1000/dominicks"]["rows"] == 10 and saved["1000/dominicks"]["keys"] == "Store,Brand"
    assert saved["1000/dominicks"]["columns"] == ["Quantity", "Price"]  # Store, Brand put back, then dropped
    assert saved["1002/tropicana"]["rows"] == 3


def test_a_file_inputs_partition_format_groups_its_files(job, write_inputs) -> None:
    """MachineLearningNotebooks' partition sample: files grouped by the values of user and genres in their paths;
    each run() gets one partition's files, the context its keys (dataset: None, a registered dataset is Azure's)."""
    inputs = write_inputs(
        {"u1/spring/rock.wav": "1", "u1/autumn/rock.wav": "2", "u1/spring/jazz.wav": "3", "u2/spring/rock.wav": "4"}
    )
    final, state, spec = job(
        FILE_PARTITIONS,
        {},
        input_dir=inputs,
        spec_fields={"partition_keys": ("user", "genres"), "partition_format": "{user}/{season}/{genres}.wav"},
        mini_batch_size=1,
    )
    assert final == status.FINISHED, state["message"]
    assert sorted(_rows(spec)) == [
        "jazz.wav,u1,jazz,1",
        "rock.wav,u1,rock,2",
        "rock.wav,u1,rock,2",
        "rock.wav,u2,rock,1",
    ]
    assert state["counts"]["total_mini_batches"] == 3  # partition keys take effect over mini_batch_size (YAML)


def test_a_folder_of_csv_files_without_an_mltable_is_a_file_input(job) -> None:
    """HOWTO: a file list is a uri_folder; only an MLTable file makes a folder a table: run() gets paths."""
    code = "def run(mini_batch):\n    return [type(mini_batch).__name__ + ' ' + str(len(mini_batch))]\n"
    _final, state, spec = job(code, {"a.csv": "x,y\n1,2", "b.csv": "x,y\n3,4"}, mini_batch_size=2, run_max_try=1)
    assert _rows(spec) == ["list 2"]
    assert state["counts"]["failed_files"] == 1  # one row for two files: the runtime counts the other file failed


def test_a_dataframe_script_over_a_folder_of_csv_files_is_told_how_to_make_it_a_table(job) -> None:
    """An entry script written for DataFrames (the 2a iris script) over a folder of CSV files without an MLTable
    file fails on the paths it gets, try after try: the job's error says why and what to add."""
    final, _state, spec = job(IRIS, {"a.csv": "x,y\n1,2"}, run_max_try=2, error_threshold=0)
    assert final == status.FAILED
    error = Path(spec.logs_dir, "job_error.txt").read_text()
    assert "holds table files (csv) but no MLTable file" in error and "add an MLTable" in error


def test_run_with_one_argument_is_refused_on_a_partitioned_job(job, write_inputs) -> None:
    inputs = write_inputs({"u1/a.wav": "1"})
    final, state, _ = job(
        "def run(mini_batch):\n    return mini_batch\n",
        {},
        input_dir=inputs,
        spec_fields={"partition_keys": ("user",), "partition_format": "{user}/{name}.wav"},
    )
    assert final == status.FAILED and "add the second parameter" in state["message"]


@pytest.mark.parametrize(
    ("files", "fields", "message"),
    [
        ({"MLTable": IRIS_MLTABLE, "iris.csv": "a,b\n1,2"}, {"partition_keys": ("Store",)}, "are not columns"),
        ({"MLTable": "paths:\n  - file: ./x.csv\n", "x.csv": "a\n1"}, {}, "has no read_delimited"),
        (
            {
                "MLTable": "paths:\n  - file: ./x.csv\ntransformations:\n  - read_delimited: {}\n  - take: 3\n",
                "x.csv": "a",
            },
            {},
            "asks for the transformation 'take'",
        ),
        ({"MLTable": IRIS_MLTABLE, "iris.csv": "a\n1"}, {"table_mini_batch_size": "10 pages"}, "approximate data size"),
        ({"a/b.wav": "1"}, {"partition_keys": ("user",), "partition_format": "{genre}/{name}.wav"}, "not fields"),
        ({"a.wav": "1"}, {"partition_keys": ("user",), "partition_format": "{user}/{name}.wav"}, "does not have"),
    ],
)
def test_a_table_or_partition_the_engine_cannot_read_fails_saying_what(job, files, fields, message) -> None:
    final, state, _ = job("def run(mini_batch, context=None):\n    return []\n", files, spec_fields=fields)
    assert final == status.FAILED and message in state["message"], state["message"]


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
