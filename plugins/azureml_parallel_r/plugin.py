"""The package's Airflow plugin: the operator extra links, and the run report (a FastAPI app the API server mounts,
shown as a tab of each DAG run and task instance).

Installed as a package, Airflow loads it from the ``airflow.plugins`` entry point (always, unlike a provider's
``plugins``, which Airflow loads only with ``[core] lazy_discover_providers = False``); from a plugins folder without
the package installed, ``plugins/azureml_parallel_r_plugin.py`` registers it. The web app is built only when the API
server asks for it, so the workers and the scheduler do not import FastAPI for it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from azureml_parallel_r.links import PipelineRunLink, RunReportLink
from azureml_parallel_r.report.urls import REPORT_HREF, REPORT_ROUTE, TASK_REPORT_HREF, TASK_REPORT_ROUTE, URL_PREFIX


class AzureMLParallelRPlugin(AirflowPlugin):
    """The "Pipeline run" and "Run report" links, and the run report app with its two tabs."""

    name = "azureml_parallel_r"
    operator_extra_links = [PipelineRunLink(), RunReportLink()]
    # relative hrefs (no leading slash): the UI resolves them against its base URL, so a sub-path works
    external_views = [
        {"name": "Run report", "href": REPORT_HREF, "destination": "dag_run", "url_route": REPORT_ROUTE},
        {
            "name": "Run report",
            "href": TASK_REPORT_HREF,
            "destination": "task_instance",
            "url_route": TASK_REPORT_ROUTE,
        },
    ]
    _apps: list[dict[str, Any]] | None = None

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        if AzureMLParallelRPlugin._apps is None:
            from azureml_parallel_r.report.app import create_app

            AzureMLParallelRPlugin._apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Run report"}]
        return AzureMLParallelRPlugin._apps
