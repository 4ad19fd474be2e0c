"""The run report app inside Airflow's own API server app (``airflow.api_fastapi.app.create_app``, which mounts the
package's plugin), over DAG runs made with dag.test() on the local engine with real R: access through Airflow's auth
manager, what the page shows, paging and filtering the failed files, a repair run, and nothing a run wrote reaching
the page as markup."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from azureml_parallel_r.examples.samples import write_png
from tests.conftest import CONN_VARIABLE, REPO, local_connection_value
from tests.dags.dag_runs import DAG_ID, run_dag, sample_inputs

pytestmark = pytest.mark.integration
DATE = "2026-11-21"
HOSTILE = "<img src=x onerror=alert(1)>.png"  # a file name that is markup
PREFIX = "/azureml-parallel-r/runs"


def _dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag(DAG_ID)


def _latest_run_id() -> str:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc()).first().run_id


@pytest.fixture(scope="module")
def finished(airflow_db, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A finished DAG run over the samples and a file named like markup: both corrupt files fail, validation passes
    (5 failures tolerated)."""
    root = tmp_path_factory.mktemp("report") / "datastore"
    root.mkdir()
    folder = sample_inputs(root, DATE, images=2)
    (folder / HOSTILE).write_bytes(b"not a png either")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_VARIABLE, local_connection_value(root))
        state, _ = run_dag(_dag(), DATE)
        assert state == "success"
        yield {"root": root, "folder": folder, "run_id": _latest_run_id()}


@pytest.fixture(scope="module")
def client(finished: dict[str, Any]) -> Any:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app())


def _token(role: str | None, name: str = "someone") -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        "Authorization": f"Bearer {get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=role))}"
    }


def _get(client: Any, path: str, role: str | None = "VIEWER", **params: Any) -> Any:
    return client.get(path, params=params, headers=_token(role) if role != "anonymous" else {})


def test_nothing_is_served_without_a_user_or_to_a_user_without_access(client, finished) -> None:
    """A run's data needs access to its DAG; the page's script and style, which hold none, any signed-in user (a user
    allowed one DAG only must load them: tests/system checks that with a per-DAG role under the FAB auth manager)."""
    base = f"{PREFIX}/{DAG_ID}/{finished['run_id']}/"
    runs = [f"{base}{end}" for end in ("", "summary", "failures", "failures.csv", "failures.jsonl", "slowest.csv")]
    for path in runs:
        assert _get(client, path, role="anonymous").status_code == 401, path
        assert _get(client, path, role=None).status_code == 403, path  # signed in, no role: no access to DAGs
        assert _get(client, path).status_code == 200, path
    for name in ("report.js", "report.css"):
        path = f"/azureml-parallel-r/static/{name}"
        assert _get(client, path, role="anonymous").status_code == 401, path
        assert _get(client, path, role=None).status_code == 200, path
    assert client.get(f"{base}summary", headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403)
    assert _get(client, f"{PREFIX}/{DAG_ID}/no-such-run/summary").status_code == 404


def test_the_plugin_is_registered_once_with_a_tab_on_runs_and_task_instances(client, finished) -> None:
    """From the plugins folder and the installed package's entry point alike: once, its tabs' addresses relative (an
    Airflow behind a sub-path), the report app mounted."""
    plugins = _get(client, "/api/v2/plugins", role="ADMIN").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "azureml_parallel_r"]
    views = {view["destination"]: view for view in plugin["external_views"]}
    assert set(views) == {"dag_run", "task_instance"}
    assert views["dag_run"]["href"] == "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/"
    assert views["task_instance"]["href"] == "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/?task_id={TASK_ID}"
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/azureml-parallel-r"]
    errors = _get(client, "/api/v2/plugins/importErrors", role="ADMIN").json()["import_errors"]
    assert not [error for error in errors if "azureml_parallel_r" in json.dumps(error)]  # not "already registered"


def test_the_summary_shows_the_run_its_outcome_and_its_timing(client, finished) -> None:
    summary = _get(client, f"{PREFIX}/{DAG_ID}/{finished['run_id']}/summary").json()
    assert (
        summary["submitted"]
        and summary["dag_run_state"] == "success"
        and summary["submit_task_id"] == "submit_pipeline"
    )
    run = summary["run"]
    assert run["engine"] == "local" and run["run_url"] is None  # a local run's logs folder is no http(s) link
    assert run["workspace"].startswith("file://") and run["output_location"].startswith("file://")
    assert run["output_location"].endswith(run["output_path"])
    assert run["dataset"]["path"] == f"r-script-inputs/{DATE}" and run["dataset"]["file_count"] == 8
    # mini_batch_size left unset: chosen, 8 files over 2 processes make mini-batches of 1
    scale = (run["r_script"], run["node_count"], run["process_count_per_node"], run["mini_batch_size"])
    assert scale == ("r/process_file.r", 1, 2, 1)
    validation = summary["validation"]
    assert validation["passed"] and validation["counts"]["succeeded"] == 6 and validation["counts"]["failed"] == 2
    durations = validation["durations"]
    assert sum(durations["histogram"]["counts"]) == 6 and len(durations["slowest"]) == 6
    assert durations["p50_seconds"] <= durations["p99_seconds"] <= durations["max_seconds"]
    assert validation["throughput"]["files_per_second"] > 0
    # the rerun button's run: the same parameters, and the run it repairs; Airflow says who may trigger it
    rerun = {"conf": {"rerun_failed_of": finished["run_id"]}, "files": 2}
    assert _get(client, f"{PREFIX}/{DAG_ID}/{finished['run_id']}/summary", role="ADMIN").json()["rerun"] == rerun
    assert summary["rerun"] == {**rerun, "disabled": f"you may not trigger {DAG_ID}: ask for permission to run it"}
    # what it cost: the local engine's CPU time, measured when the run ended, and per successful file
    cost = summary["cost"]
    assert cost["kind"] == "cpu" and cost["final"] and cost["cpu_seconds"] > 0
    assert cost["cpu_seconds_per_successful_file"] == round(cost["cpu_seconds"] / 6, 4)
    assert run["logs_folder"].endswith(f"/{run['output_path']}/logs") and Path(run["logs_folder"]).is_dir()


def test_every_failed_file_downloads_with_its_log(client, finished) -> None:
    """CSV and JSON Lines of every failed file (the markup name as data), and the slowest files as CSV; each failed
    file names its R log, a file in the run's logs folder."""
    import csv
    import io

    base = f"{PREFIX}/{DAG_ID}/{finished['run_id']}"
    response = _get(client, f"{base}/failures.csv")
    assert response.headers["content-disposition"].startswith("attachment; filename*=UTF-8''r_parallel_batch-")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(row["relative_path"] for row in rows) == sorted(["camera-b/broken.png", HOSTILE])
    assert {row["kind"] for row in rows} == {"r_error"} and all("not in PNG format" in row["error"] for row in rows)
    lines = [json.loads(line) for line in _get(client, f"{base}/failures.jsonl").text.splitlines()]
    assert sorted(line["relative_path"] for line in lines) == sorted(row["relative_path"] for row in rows)
    logs_folder = _get(client, f"{base}/summary").json()["run"]["logs_folder"]
    for line in lines:
        assert line["log"].startswith("user/entry_script_log/") and "not in PNG format" in line["error"]
        assert Path(logs_folder, line["log"]).is_file(), line["log"]
    slowest = list(csv.DictReader(io.StringIO(_get(client, f"{base}/slowest.csv").text)))
    assert len(slowest) == 6 and all(float(row["seconds"]) > 0 for row in slowest)


def test_failed_files_page_and_filter_with_their_r_errors(client, finished) -> None:
    base = f"{PREFIX}/{DAG_ID}/{finished['run_id']}/failures"
    first = _get(client, base, limit=1).json()
    assert (first["total"], first["matching"], len(first["items"])) == (2, 2, 1)
    second = _get(client, base, limit=1, offset=1).json()
    assert {first["items"][0]["relative_path"], second["items"][0]["relative_path"]} == {"camera-b/broken.png", HOSTILE}
    hostile = _get(client, base, text="ONERROR").json()
    assert [item["relative_path"] for item in hostile["items"]] == [HOSTILE]  # the name as data, byte for byte
    (broken,) = _get(client, base, text="broken").json()["items"]
    assert broken["kind"] == "r_error" and "not in PNG format" in broken["error"] and broken["attempt"] >= 1
    assert _get(client, base, kind="r_error").json()["matching"] == 2
    assert _get(client, base, kind="timeout").json()["matching"] == 0
    assert _get(client, base, limit=10_000).json()["limit"] == 500  # pages are bounded


def test_the_page_holds_nothing_of_the_run_and_runs_only_its_own_script(client, finished) -> None:
    response = _get(client, f"{PREFIX}/{DAG_ID}/{finished['run_id']}/")
    html = response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "onerror" not in html and finished["run_id"] not in html  # the run's data arrives as JSON, shown as text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no inline event handler
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["../../../static/report.css", "../../../static/report.js"]
    script = _get(client, "/azureml-parallel-r/static/report.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert set(re.findall(r"https?://[^\s\"'`]+", script)) == {"http://www.w3.org/2000/svg"}  # a namespace, not loaded


@pytest.mark.parametrize(
    "name",
    [
        "report.html",
        "../report.html",
        "..%2Freport.html",
        "%2e%2e%2fapp.py",
        "/etc/passwd",
        "..%5c..%5capp.py",
        "report.js%00.css",
    ],
)
def test_the_app_serves_no_file_but_its_own_script_and_style(client, finished, name: str) -> None:
    assert client.get(f"/azureml-parallel-r/static/{name}", headers=_token("VIEWER")).status_code == 404


def test_a_repair_run_reruns_exactly_the_failed_files_and_both_reports_link_each_other(client, finished, capfd) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    original = finished["run_id"]
    write_png(str(finished["folder"] / "camera-b" / "broken.png"))  # the corrupt sample, fixed
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_VARIABLE, local_connection_value(finished["root"]))
        state, tasks = run_dag(_dag(), "2026-11-30", {"rerun_failed_of": original}, run_after="2026-12-01T10:00:00Z")
    assert state == "success", tasks
    # both of the repaired run's states were read (the task log): the pipeline run's, and the DAG run's from Airflow
    assert re.search(r"its pipeline run \S+ is Finished, the DAG run success", capfd.readouterr().out)
    repair = _latest_run_id()
    summary = _get(client, f"{PREFIX}/{DAG_ID}/{repair}/summary").json()
    assert (
        summary["run"]["dataset"]["file_count"] == 2 and summary["run"]["dataset"]["path"] == f"r-script-inputs/{DATE}"
    )
    assert summary["run"]["rerun_of"]["dag_run_id"] == original and summary["run"]["rerun_of"]["failed_files"] == 2
    assert summary["validation"]["repair"] == {
        "repaired_dag_run_id": original,
        "repaired_output_path": summary["run"]["rerun_of"]["output_path"],
        "original_failures": 2,
        "now_succeeded": 1,
        "still_failing": 1,
        "date": DATE,
        "chain": [original],
    }
    still = _get(client, f"{PREFIX}/{DAG_ID}/{repair}/failures").json()["items"]
    assert [item["relative_path"] for item in still] == [HOSTILE]
    # its outputs complete the date it repairs: the asset event names both folders, under that date
    with create_session() as session:
        (event,) = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "r_parallel_batch_outputs", AssetEvent.partition_key == DATE)
            .order_by(AssetEvent.id.desc())
            .limit(1)
            .all()
        )
    assert event.extra["output_paths"] == [summary["run"]["rerun_of"]["output_path"], summary["run"]["output_path"]]
    repaired = _get(client, f"{PREFIX}/{DAG_ID}/{original}/summary").json()
    assert [r["dag_run_id"] for r in repaired["repairs"]] == [repair]
    assert Path(finished["root"], summary["run"]["output_path"], "validation-failures.jsonl").is_file()

    # the repair's own Rerun button, once the last file is fixed: a repair of the repair, on yet another day, still
    # completes the first run's date, naming every folder of the chain, the first run's first
    assert {k: v for k, v in summary["rerun"].items() if k != "disabled"} == {
        "conf": {"rerun_failed_of": repair},
        "files": 1,
    }
    write_png(str(finished["folder"] / HOSTILE))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_VARIABLE, local_connection_value(finished["root"]))
        state, tasks = run_dag(_dag(), "2026-12-02", summary["rerun"]["conf"], run_after="2026-12-03T10:00:00Z")
    assert state == "success", tasks
    second = _get(client, f"{PREFIX}/{DAG_ID}/{_latest_run_id()}/summary").json()
    chain = second["run"]["rerun_of"]["chain"]
    assert [link["dag_run_id"] for link in chain] == [original, repair] and second["run"]["rerun_of"]["date"] == DATE
    assert second["validation"]["repair"]["now_succeeded"] == 1 and second["validation"]["passed"]
    with create_session() as session:
        (event,) = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "r_parallel_batch_outputs")
            .order_by(AssetEvent.id.desc())
            .limit(1)
            .all()
        )
        assert event.partition_key == DATE
        assert event.extra["output_paths"] == [
            chain[0]["output_path"],
            chain[1]["output_path"],
            second["run"]["output_path"],
        ]


def test_a_run_that_never_submitted_shows_its_tasks_and_the_failing_tasks_error(client, finished) -> None:
    """A repair of a run that does not exist fails in register_dataset: the report shows the DAG run's task states
    and that task's error (from its log, as the UI reads it), not "not started"."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_VARIABLE, local_connection_value(finished["root"]))
        state, tasks = run_dag(
            _dag(), "2026-12-04", {"rerun_failed_of": "no-such-run"}, run_after="2026-12-05T10:00:00Z"
        )
    assert state == "failed" and tasks["register_dataset"] == "failed", tasks
    summary = _get(client, f"{PREFIX}/{DAG_ID}/{_latest_run_id()}/summary").json()
    assert not summary["submitted"] and "not_ours" not in summary and "run" not in summary
    assert summary["task_states"]["register_dataset"] == "failed"
    assert summary["task_states"]["submit_pipeline"] == "upstream_failed"
    assert set(summary["task_errors"]) == {"register_dataset"} and summary["task_errors"]["register_dataset"]
