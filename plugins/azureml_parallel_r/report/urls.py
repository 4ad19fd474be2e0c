"""Where the run report is: its mount point in the API server, the UI's tabs that show it, and the address of a DAG
run's report tab."""

from __future__ import annotations

from urllib.parse import quote

URL_PREFIX = "/azureml-parallel-r"  # the app's mount point, below the API server's base URL
# the UI fills in {DAG_ID}, {RUN_ID} and {TASK_ID}; relative, so that a base URL with a sub-path works
REPORT_HREF = "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/"
TASK_REPORT_HREF = "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/?task_id={TASK_ID}"
# the tabs' routes in the UI: dags/<dag>/runs/<run>/plugin/<route>, .../tasks/<task>/plugin/<route>
REPORT_ROUTE = "azureml-parallel-r-report"
TASK_REPORT_ROUTE = "azureml-parallel-r-task-report"


def report_page_url(dag_id: str, run_id: str, task_id: str | None = None, base_url: str = "") -> str:
    """The report app's own page of a DAG run. Opened on its own, it forwards to the UI's "Run report" tab
    (``dags/<dag>/runs/<run>/plugin/<REPORT_ROUTE>``, report.js) when the UI shows the user plugin tabs, and is the
    whole report where it does not (under the FAB auth manager only roles with "can read on Plugins" see them).

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task to narrow to (None: the DAG run's first submit task).
    :param base_url: the API server's base URL (``[api] base_url``), "" for an address relative to the UI's base.
    """
    path = f"{URL_PREFIX.lstrip('/')}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/"
    if task_id:
        path += f"?task_id={quote(task_id, safe='')}"
    return f"{base_url.rstrip('/')}/{path}" if base_url else path
