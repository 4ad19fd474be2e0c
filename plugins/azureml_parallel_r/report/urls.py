"""Where the run report is: its mount point in the API server and the addresses of a DAG run's report."""

from __future__ import annotations

from urllib.parse import quote

URL_PREFIX = "/azureml-parallel-r"  # the app's mount point, below the API server's base URL
# the UI fills in {DAG_ID}, {RUN_ID} and {TASK_ID}; relative, so that a base URL with a sub-path works
REPORT_HREF = "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/"
TASK_REPORT_HREF = "azureml-parallel-r/runs/{DAG_ID}/{RUN_ID}/?task_id={TASK_ID}"


def report_url(base_url: str, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """The absolute address of a DAG run's report (the UI shows only http(s) extra links).

    :param base_url: the API server's base URL (``[api] base_url``).
    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task to narrow to.
    """
    url = f"{base_url.rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/"
    return f"{url}?task_id={quote(task_id, safe='')}" if task_id else url
