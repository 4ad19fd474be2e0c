"""The run report's web app, which Airflow's API server mounts at ``/azureml-parallel-r`` (the package's plugin,
:mod:`azureml_parallel_r.plugin`):

=================================================  ==========================================================
``GET runs/{dag_id}/{run_id}/``                    the page (static HTML: nothing from a run is in it)
``GET runs/{dag_id}/{run_id}/summary``             the run, its outcome or progress, its repairs (JSON)
``GET runs/{dag_id}/{run_id}/failures``            a page of its failed files: ``offset``, ``limit``, ``text``,
                                                   ``kind`` (JSON)
``GET static/{report.js,report.css}``              the page's script and style, from this package
=================================================  ==========================================================

``?task_id=`` narrows a DAG run with several submit tasks to one (the task-instance tab passes it).

Access is Airflow's own: every route needs a signed-in user (the UI's session cookie or a bearer token, as Airflow's
REST API reads them) whom the auth manager lets read the DAG's runs and task instances
(``requires_access_dag``); without a user it answers 401, without access 403. The page renders what a run wrote
as text only, and every answer carries a Content-Security-Policy that allows this app's own script and style and
nothing else (no inline script, nothing from another origin): a file named ``<img src=x onerror=...>.png`` is shown
as that text. The page's "Rerun failed files" button posts to Airflow's REST API with the user's own session, so
Airflow decides whether that user may trigger the DAG. The app serves no file of a run: the outputs' place is shown,
not served.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

STATIC = {"report.js": "text/javascript; charset=utf-8", "report.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _static(name: str) -> bytes:
    return resources.files("azureml_parallel_r.report").joinpath("static", name).read_bytes()


def create_app() -> FastAPI:
    """The report app (one per API server process)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    from azureml_parallel_r.report.content import FailureLists, failure_page, summary
    from azureml_parallel_r.report.sources import read_dag_run

    app = FastAPI(title="azureml-parallel-r run report", docs_url=None, redoc_url=None, openapi_url=None)
    read_runs = [
        Depends(requires_access_dag("GET", DagAccessEntity.RUN)),
        Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
    ]
    failure_lists = FailureLists()

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def found_run(dag_id: str, run_id: str, task_id: str | None) -> Any:
        found = read_dag_run(dag_id, run_id, task_id)
        if found is None:
            raise HTTPException(404, f"DAG {dag_id} has no run {run_id}")
        return found

    @app.get("/runs/{dag_id}/{run_id}/", dependencies=read_runs, response_class=HTMLResponse)
    def page(dag_id: str, run_id: str, task_id: str | None = None) -> HTMLResponse:
        found_run(dag_id, run_id, task_id)
        return HTMLResponse(_static("report.html"))

    @app.get("/runs/{dag_id}/{run_id}/summary", dependencies=read_runs)
    def run_summary(dag_id: str, run_id: str, task_id: str | None = None) -> JSONResponse:
        return JSONResponse(summary(found_run(dag_id, run_id, task_id)))

    @app.get("/runs/{dag_id}/{run_id}/failures", dependencies=read_runs)
    def failures(
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1),
        text: str = Query("", max_length=200),
        kind: str = Query("", max_length=50),
    ) -> JSONResponse:
        found = found_run(dag_id, run_id, task_id)
        return JSONResponse(failure_page(failure_lists.get(found), offset=offset, limit=limit, text=text, kind=kind))

    @app.get("/static/{name}", dependencies=[Depends(requires_access_dag("GET"))])
    def static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, "not found")
        return Response(_static(name), media_type=STATIC[name])

    return app
