"""The DAG on the real Airflow services: a run triggered through the REST API with params, a backfill
over three dated folders (one missing), the sensor deferred to the triggerer, and the UI in Chromium.

The tests share one stack and run in file order: the UI screenshots show the runs of the tests before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.system.conftest import (
    ARTIFACTS,
    BACKFILL_DATES,
    HOSTILE_NAME,
    MISSING_DATE,
    REPORT_INPUTS,
    TRIGGERED_INPUTS,
)
from tests.system.stack import AirflowStack
from tests.waiting import wait_until

# the stack's start (tests/system/stack.py) and the longest wait of a test: a backfill's three runs, 300 s each
# one worker runs them all, in order (scripts/test.sh: --dist loadfile), so the module's one Airflow stack serves them
pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(1500)]

DAG_ID = "r_parallel_batch"
TASKS = ("register_dataset", "submit_pipeline", "wait_for_pipeline", "validate_outputs")
FINISHED = {"success", "failed"}


def task_states(stack: AirflowStack, run_id: str) -> dict[str, str | None]:
    instances = stack.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in instances}


def wait_for_run(stack: AirflowStack, run_id: str, timeout: float) -> dict[str, Any]:
    """Wait for a DAG run to finish and return it."""

    def finished() -> dict[str, Any] | None:
        stack.check_alive()
        run = stack.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in FINISHED else None

    try:
        return wait_until(finished, timeout=timeout, what=f"DAG run {run_id} to finish", interval=0.25)
    except Exception as error:
        raise AssertionError(f"{error}; task states {task_states(stack, run_id)}\n{stack.logs_tail()}") from error


def output_folders(datastore: Path, date: str) -> list[Path]:
    return sorted(p for p in (datastore / "r-script-outputs" / date).glob("*") if p.is_dir())


def assert_succeeded_with_outputs(stack: AirflowStack, datastore: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Every task of ``run`` succeeded and its pipeline run's validation.json passed; return that report."""
    run_id = run["dag_run_id"]
    assert run["state"] == "success", task_states(stack, run_id)
    assert task_states(stack, run_id) == dict.fromkeys(TASKS, "success")
    pipeline_run = stack.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/submit_pipeline/xcomEntries/run_id")
    date = (run["logical_date"] or run["run_after"])[:10]  # the macro run_date
    report = json.loads((datastore / "r-script-outputs" / date / pipeline_run["value"] / "validation.json").read_text())
    assert report["passed"] is True, report["problems"]
    assert [f["relative_path"] for f in report["failures"]] == ["camera-b/broken.png"]  # the corrupt sample, alone
    assert report["counts"]["succeeded"] == report["counts"]["input_files"] - 1 > 10
    return report


def test_every_service_listens_on_loopback_only(stack: AirflowStack) -> None:
    sockets = stack.listening_sockets()
    assert (("127.0.0.1", stack.api_port)) in sockets and (("127.0.0.1", stack.postgres.port)) in sockets
    assert all(address in {"127.0.0.1", "::1"} for address, _ in sockets), sockets


def trigger_log_lines(stack: AirflowStack, run_id: str, task_id: str) -> list[str]:
    """Lines the triggerer wrote for the task (``attempt=N.log.trigger.<id>.log`` beside the task's own log):
    only these prove that the trigger runs, not the task's own poke before it deferred."""
    folder = stack.logs / "tasks" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    files = sorted(folder.glob("*.trigger.*.log"))
    return [line for path in files for line in path.read_text(errors="replace").splitlines()]


def test_a_run_triggered_through_the_rest_api_with_params_succeeds(
    stack: AirflowStack, unpaused_dag: str, datastore: Path, gated_r_script: tuple[Path, Path]
) -> None:
    script, gate = gated_r_script
    conf = {
        "input_path": TRIGGERED_INPUTS,
        "r_script": str(script),
        "r_args": ["--thumbnail-size", "16"],
        "mini_batch_size": 4,
    }
    # no logical date: Airflow 3's default for manual runs; the outputs go under the day it ran
    run = stack.api.post(
        f"/dags/{unpaused_dag}/dagRuns", {"dag_run_id": "rest-api-trigger", "logical_date": None, "conf": conf}
    )

    # The run cannot progress until the gate opens: first the sensor must hand its wait to the triggerer
    # (deferred), and the trigger must have polled the run while it was Running.
    def deferred_and_polled() -> bool:
        stack.check_alive()
        states = task_states(stack, "rest-api-trigger")
        assert states.get("wait_for_pipeline") not in FINISHED, states
        lines = trigger_log_lines(stack, "rest-api-trigger", "wait_for_pipeline")
        polled = any("Pipeline run local_" in line and " is Running" in line for line in lines)
        return states.get("wait_for_pipeline") == "deferred" and polled

    try:
        wait_until(deferred_and_polled, timeout=180, what="wait_for_pipeline deferred with its trigger polling")
    finally:
        gate.touch()
    run = wait_for_run(stack, run["dag_run_id"], timeout=300)

    report = assert_succeeded_with_outputs(stack, datastore, run)
    assert run["conf"] == conf
    rendered = stack.api.get(f"/dags/{DAG_ID}/dagRuns/rest-api-trigger/taskInstances/submit_pipeline")
    assert rendered["rendered_fields"]["mini_batch_size"] == 4
    assert rendered["rendered_fields"]["r_args"] == ["--thumbnail-size", "16"]
    assert report["counts"]["output_files"] > 0


def test_the_sensor_waited_in_the_triggerer(stack: AirflowStack, unpaused_dag: str) -> None:
    """The task log the UI shows has the triggerer's part: the trigger started, polled, and fired."""
    log = stack.api.get(f"/dags/{unpaused_dag}/dagRuns/rest-api-trigger/taskInstances/wait_for_pipeline/logs/1")
    events = [line.get("event", "") for line in log["content"] if isinstance(line, dict)]
    assert "Pausing task as DEFERRED. " in events
    started = [e for e in events if e.startswith("trigger r_parallel_batch/rest-api-trigger/wait_for_pipeline")]
    assert started and started[0].endswith("starting"), events
    assert any(e.startswith("Pipeline run local_") and " is Running " in e for e in events)
    assert "Trigger fired event" in events


def test_a_backfill_over_three_dates_runs_two_and_skips_the_missing_folder(
    stack: AirflowStack, unpaused_dag: str, unpaused_downstream_dag: str, datastore: Path
) -> None:
    stack.cli(
        "backfill",
        "create",
        "--dag-id",
        unpaused_dag,
        "--from-date",
        BACKFILL_DATES[0],
        "--to-date",
        BACKFILL_DATES[-1],
    )

    def backfill_runs() -> list[dict[str, Any]] | None:
        runs = stack.api.get(f"/dags/{DAG_ID}/dagRuns", run_type=["backfill"])["dag_runs"]
        return runs if len(runs) == len(BACKFILL_DATES) else None

    runs = wait_until(backfill_runs, timeout=60, what="the backfill's three DAG runs")
    by_date = {run["logical_date"][:10]: run for run in runs}
    assert sorted(by_date) == list(BACKFILL_DATES)
    for date in BACKFILL_DATES:
        run = wait_for_run(stack, by_date[date]["dag_run_id"], timeout=300)
        if date == MISSING_DATE:
            assert run["state"] == "success"
            assert task_states(stack, run["dag_run_id"]) == dict.fromkeys(TASKS, "skipped")
            assert not output_folders(datastore, date)
        else:
            assert_succeeded_with_outputs(stack, datastore, run)

    def backfill_completed() -> bool:  # the scheduler marks finished backfills every 30 s
        [backfill] = stack.api.get("/backfills", dag_id=DAG_ID)["backfills"]
        return backfill["completed_at"] is not None

    wait_until(backfill_completed, timeout=90, what="the scheduler to mark the backfill completed")


def test_the_downstream_dag_ran_once_for_each_validated_date(
    stack: AirflowStack, unpaused_downstream_dag: str, datastore: Path
) -> None:
    """Each validated date's asset event (its partition: the date) scheduled one run of r_parallel_batch_results for
    that date, which got the date's output folder from the event; the skipped date has none."""
    dated = [date for date in BACKFILL_DATES if date != MISSING_DATE]

    def partition_runs() -> dict[str, dict[str, Any]] | None:
        runs = stack.api.get(f"/dags/{unpaused_downstream_dag}/dagRuns")["dag_runs"]
        by_partition = {run.get("partition_key"): run for run in runs}
        done = all(by_partition.get(d, {}).get("state") in FINISHED for d in dated)
        return by_partition if done else None

    by_partition = wait_until(partition_runs, timeout=180, what="a downstream run for each backfilled date")
    assert MISSING_DATE not in by_partition
    for date in dated:
        run = by_partition[date]
        assert run["state"] == "success", run
        result = stack.api.get(
            f"/dags/{unpaused_downstream_dag}/dagRuns/{run['dag_run_id']}/taskInstances/"
            "report_outputs/xcomEntries/return_value"
        )["value"]
        (folder,) = output_folders(datastore, date)
        output_path = f"r-script-outputs/{date}/{folder.name}"
        assert result == {
            "date": date,
            "output_path": output_path,
            "output_paths": [output_path],
            "run_id": folder.name,
        }


def test_a_run_triggered_from_the_ui_form_succeeds_and_the_grid_is_green(
    stack: AirflowStack, unpaused_dag: str, datastore: Path
) -> None:
    """Chromium: sign in, screenshot the trigger form, trigger with two params changed, screenshot the grid."""
    from tests.system.browser import AirflowUi

    with AirflowUi(stack.base_url, ARTIFACTS / "chromium") as ui:
        ui.log_in(stack.username, stack.password)
        values = {"input_path": TRIGGERED_INPUTS, "r_args": "--thumbnail-size\n8"}
        form = ui.trigger_from_form(unpaused_dag, ARTIFACTS / "trigger-form.png", values, run_id="ui-form-trigger")
        for title in (
            "Input folder override",
            "R script",
            "R script arguments",
            "Files per mini-batch",
            "Worker processes per node",
            "Failed files tolerated",
            "Connection",
        ):
            assert title in form, f"the trigger form does not show the param {title!r}"

        run = wait_for_run(stack, "ui-form-trigger", timeout=300)
        assert run["logical_date"], "the form sends a logical date (now)"
        assert_succeeded_with_outputs(stack, datastore, run)
        assert run["conf"]["input_path"] == TRIGGERED_INPUTS
        assert run["conf"]["r_args"] == ["--thumbnail-size", "8"]

        runs = stack.api.get(f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
        assert {run["run_type"] for run in runs} == {"manual", "backfill"}  # no scheduled runs crept in
        assert {run["state"] for run in runs} == {"success"}
        ui.dag_grid(unpaused_dag, ARTIFACTS / "grid.png", [run["dag_run_id"] for run in runs])


def test_marking_the_deferred_sensor_failed_cancels_the_pipeline_run(
    stack: AirflowStack, unpaused_dag: str, datastore: Path
) -> None:
    """A user's action on the deferred task reaches the trigger's on_kill in the real triggerer, which
    cancels the run (a trigger that merely moves between triggerers would not)."""
    from azureml_parallel_r.backends.local import LocalBackend

    hang = datastore.parent / "hang.r"
    hang.write_text("process_file <- function(input_path, output_dir, args) Sys.sleep(600)\n")
    conf = {"input_path": TRIGGERED_INPUTS, "r_script": str(hang)}
    stack.api.post(f"/dags/{unpaused_dag}/dagRuns", {"dag_run_id": "user-stops-it", "logical_date": None, "conf": conf})

    def deferred_and_polled() -> bool:
        stack.check_alive()
        states = task_states(stack, "user-stops-it")
        assert states.get("wait_for_pipeline") not in FINISHED, states
        lines = trigger_log_lines(stack, "user-stops-it", "wait_for_pipeline")
        return states.get("wait_for_pipeline") == "deferred" and any(" is Running" in line for line in lines)

    wait_until(deferred_and_polled, timeout=180, what="wait_for_pipeline deferred with its trigger polling")
    pipeline_run = stack.api.get(
        f"/dags/{DAG_ID}/dagRuns/user-stops-it/taskInstances/submit_pipeline/xcomEntries/run_id"
    )
    stack.api.patch(f"/dags/{DAG_ID}/dagRuns/user-stops-it/taskInstances/wait_for_pipeline", {"new_state": "failed"})
    backend = LocalBackend(str(datastore))
    wait_until(
        lambda: backend.get_status(pipeline_run["value"]).status == "Canceled",
        timeout=120,
        what="the triggerer to cancel the pipeline run",
    )


def test_a_connection_saved_from_the_ui_form_runs_the_dag(
    stack: AirflowStack, unpaused_dag: str, datastore: Path
) -> None:
    """Chromium: the provider's connection form (its typed fields, the standard fields it does not use hidden) saves
    a local-engine connection; Airflow's connection test passes with it, and a run that names it succeeds."""
    from tests.system.browser import AirflowUi

    fields = {"datastore_root": str(datastore), "process_count_per_node": "2", "r_script_dirs": str(datastore.parent)}
    with AirflowUi(stack.base_url, ARTIFACTS / "chromium") as ui:
        ui.log_in(stack.username, stack.password)
        form = ui.add_connection("azureml_ui", "Azure ML Parallel R", fields, ARTIFACTS / "connection-form.png")
    for label in (
        "Engine",
        "Datastore folder (local engine)",
        "Subscription ID (Azure ML)",
        "Workspace (Azure ML)",
        "Authentication (Azure ML)",
        "Tenant ID (service principal)",
        "Client ID (service principal)",
        "Client secret (service principal)",
        "Compute cluster (Azure ML)",
    ):
        assert label in form, f"the connection form does not show {label!r}"
    assert not {"Host", "Port", "Schema"} & set(form.splitlines()), "fields the engines do not use are hidden"
    saved = stack.api.get("/connections/azureml_ui")
    assert saved["conn_type"] == "azureml_parallel_r"
    extra = json.loads(saved["extra"])
    assert (extra["engine"], extra["datastore_root"], extra["process_count_per_node"]) == ("local", str(datastore), 2)
    # what the connection list's Test button asks for (POST /connections/test with the stored connection)
    # (the preflight: one line per check)
    tested = stack.api.post("/connections/test", {"connection_id": "azureml_ui", "conn_type": "azureml_parallel_r"})
    lines = tested["message"].splitlines()
    assert tested["status"] is True and [line.split(":")[0] for line in lines] == [
        "ok   datastore",
        "ok   R",
        "ok   R script",
    ], lines
    assert lines[0] == f"ok   datastore: datastore folder {datastore} exists and is writable"

    conf = {"input_path": TRIGGERED_INPUTS, "conn_id": "azureml_ui"}
    body = {"dag_run_id": "typed-connection", "logical_date": None, "conf": conf}
    stack.api.post(f"/dags/{unpaused_dag}/dagRuns", body)
    run = wait_for_run(stack, "typed-connection", timeout=300)
    assert_succeeded_with_outputs(stack, datastore, run)


def _xcom(stack: AirflowStack, run_id: str, task_id: str, key: str = "return_value") -> Any:
    value = stack.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def _report_api(stack: AirflowStack, username: str, password: str) -> Any:
    import httpx

    token = httpx.post(f"{stack.base_url}/auth/token", json={"username": username, "password": password}, timeout=30)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return httpx.Client(base_url=f"{stack.base_url}/azureml-parallel-r", headers=headers, timeout=30)


def test_the_run_report_for_every_role_in_both_themes_and_its_repair(
    stack: AirflowStack, unpaused_dag: str, unpaused_downstream_dag: str, datastore: Path
) -> None:
    """Chromium, through the real API server with the FAB auth manager and no ``[api] base_url`` (as the shipped
    stacks): the submit task's buttons lead to the report; a viewer reads the report of a run with two failed files
    (one named like markup, shown as text, running nothing) and sees the rerun refused with Airflow's reason; a user
    whose role allows this DAG only reads it too (its script and style load) and may rerun it, and no other DAG's;
    an admin downloads the failure list, reruns the failed files once the corrupt sample is fixed (a repair over
    exactly the two), and follows the link to the repair's report, which the UI opens as its own route; the report
    follows the UI's light and dark theme, and switches with it."""
    import csv
    import shutil

    from azureml_parallel_r.examples.samples import write_png
    from tests.system.browser import AirflowUi

    body = {"dag_run_id": "report-sample", "logical_date": None, "conf": {"input_path": REPORT_INPUTS}}
    stack.api.post(f"/dags/{unpaused_dag}/dagRuns", body)
    assert wait_for_run(stack, "report-sample", timeout=300)["state"] == "success"
    assert _xcom(stack, "report-sample", "validate_outputs")["counts"]["failed"] == 2
    write_png(str(datastore / REPORT_INPUTS / "camera-b" / "broken.png"))  # what failed is fixed before the rerun
    runs_before = stack.api.get(f"/dags/{DAG_ID}/dagRuns")["total_entries"]
    # the buttons, without [api] base_url: the task's report, relative to the UI's base (it forwards to the tab)
    links = stack.api.get(f"/dags/{DAG_ID}/dagRuns/report-sample/taskInstances/submit_pipeline/links")
    page = "azureml-parallel-r/runs/r_parallel_batch/report-sample/?task_id=submit_pipeline"
    assert links["extra_links"] == {"Pipeline run": page, "Run report": page}

    with AirflowUi(stack.base_url, ARTIFACTS / "chromium") as ui:
        ui.log_in(stack.viewer, stack.viewer_password)
        shown = ui.open_run_report(DAG_ID, "report-sample")
        assert shown["rerun_button"] and shown["rerun_disabled"]
        assert (
            shown["rerun_reason"]
            == f"Rerun is not available: you may not trigger {DAG_ID}: ask for permission to run it."
        )

    with AirflowUi(stack.base_url, ARTIFACTS / "chromium") as ui:
        ui.log_in(stack.per_dag_user, stack.per_dag_password)
        shown = ui.open_run_report(DAG_ID, "report-sample")
        assert sorted(shown["failed_files"]) == sorted(["camera-b/broken.png", HOSTILE_NAME])
        assert shown["rerun_button"] and not shown["rerun_disabled"]  # the role may trigger this DAG
    # a repair of a run that does not exist never submits: the report shows its tasks and the error from the real
    # task log the scheduler's worker wrote
    body = {"dag_run_id": "repair-of-nothing", "logical_date": None, "conf": {"rerun_failed_of": "no-such-run"}}
    stack.api.post(f"/dags/{unpaused_dag}/dagRuns", body)
    assert wait_for_run(stack, "repair-of-nothing", timeout=300)["state"] == "failed"
    with _report_api(stack, stack.username, stack.password) as admin:
        never = admin.get(f"/runs/{DAG_ID}/repair-of-nothing/summary").json()
    assert not never["submitted"] and never["task_states"]["register_dataset"] == "failed"
    error = never["task_errors"]["register_dataset"]
    assert error.startswith("ConfigurationError: run 'no-such-run' of DAG r_parallel_batch has no pipeline run"), error
    runs_before += 1

    with _report_api(stack, stack.per_dag_user, stack.per_dag_password) as team:
        assert team.get("/static/report.js").status_code == 200
        assert team.get(f"/runs/{DAG_ID}/report-sample/summary").status_code == 200
        assert team.get(f"/runs/{unpaused_downstream_dag}/any-run/summary").status_code == 403  # not its DAG

    with AirflowUi(stack.base_url, ARTIFACTS / "chromium") as ui:
        ui.log_in(stack.username, stack.password)
        ui.choose_theme("light")
        ui.press_extra_link(DAG_ID, "report-sample", "submit_pipeline", "Run report")  # the button: the task's tab
        pressed = ui.read_run_report("report-sample")
        tab = "/dags/r_parallel_batch/runs/report-sample/tasks/submit_pipeline/plugin/azureml-parallel-r-task-report"
        assert pressed["url"] == stack.base_url + tab
        shown = ui.open_run_report(DAG_ID, "report-sample", ARTIFACTS / "run-report.png")
        assert shown["theme"] == "light"
        assert sorted(shown["failed_files"]) == sorted(["camera-b/broken.png", HOSTILE_NAME])  # as text
        assert shown["images"] == 0 and ui.alert_text() is None  # the name made no element and ran no script
        scale = "1 node(s) \N{MULTIPLICATION SIGN} 2 process(es)"
        for expected in (
            "Engine\nlocal",
            "R script\nr/process_file.r",
            scale,
            "Rerun 2 failed file(s)",
            "Files by duration",
            "CPU-seconds",
        ):
            assert expected in shown["text"], expected
        assert "Repairs" not in shown["text"]  # no repair yet: no empty heading
        assert shown["path_breaks"] == 1  # camera-b/<wbr>broken.png; the markup name has no separator
        assert ui.filter_failures("no such text") == "No failed file matches “no such text” (of 2)."
        assert shown["text"].index("Outcome") < shown["text"].index("Time") < shown["text"].index("Failed files")
        light = ui.report_theme("light")
        ui.switch_theme_live("dark")  # the report follows the UI's switch, without a reload
        assert ui.report_theme("dark") != light
        ui.switch_theme_live("light")
        ui.report_theme("light")

        listed = ui.download("download-csv")
        rows = list(csv.DictReader(listed.open(encoding="utf-8")))
        assert sorted(row["relative_path"] for row in rows) == sorted(["camera-b/broken.png", HOSTILE_NAME])

        answer = ui.rerun_failed_files()
        assert answer.startswith("Triggered "), answer
        repair_id = answer.removeprefix("Triggered ").removesuffix(".")
        repair = wait_for_run(stack, repair_id, timeout=300)
        assert repair["state"] == "success", task_states(stack, repair_id)
        ui.open_run_report(DAG_ID, "report-sample")
        repaired = ui.follow_report_link(repair_id)  # the Repairs list's link: the UI's own route to its tab
        assert repaired["url"].startswith(stack.base_url + "/dags/r_parallel_batch/runs/")
        assert "This run reruns the failed files of a run" in repaired["text"]

        ui.choose_theme("dark")
        dark = ui.open_run_report(DAG_ID, "report-sample", ARTIFACTS / "run-report-dark.png")
        assert dark["theme"] == "dark" and dark["background"] != shown["background"]
    assert stack.api.get(f"/dags/{DAG_ID}/dagRuns")["total_entries"] == runs_before + 1  # the admin's repair only
    for name in ("run-report.png", "run-report-dark.png"):
        shutil.copyfile(ARTIFACTS / name, REPO / "docs" / "images" / name)

    assert repair["conf"] == {"input_path": REPORT_INPUTS, "rerun_failed_of": "report-sample"}
    assert _xcom(stack, repair_id, "register_dataset")["file_count"] == 2
    outcome = _xcom(stack, repair_id, "validate_outputs")
    assert outcome["passed"] and outcome["repair"]["original_failures"] == 2
    assert (outcome["repair"]["now_succeeded"], outcome["repair"]["still_failing"]) == (1, 1)
    assert [failure["relative_path"] for failure in outcome["failures"]] == [HOSTILE_NAME]
