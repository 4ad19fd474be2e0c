"""The run report's web app, which Airflow's API server mounts at ``/azureml-parallel-r`` (the package's plugin,
:mod:`azureml_parallel_r.plugin`):

=================================================  ==========================================================
``GET runs/{dag_id}/{run_id}/``                    the page (static HTML: nothing from a run is in it)
``GET runs/{dag_id}/{run_id}/summary``             the run, its outcome or progress, its repairs (JSON)
``GET runs/{dag_id}/{run_id}/failures``            a page of its failed files: ``offset``, ``limit``, ``text``,
                                                   ``kind`` (JSON)
``GET runs/{dag_id}/{run_id}/failures.csv``        every failed file, to download (``.jsonl``: as JSON Lines,
                                                   with R's output)
``GET runs/{dag_id}/{run_id}/slowest.csv``         the slowest files, to download
``GET static/{report.js,report.css}``              the page's script and style, from this package (any signed-in
                                                   user: they hold no data)
=================================================  ==========================================================

``?task_id=`` narrows a DAG run with several submit tasks to one (the task-instance tab passes it).

Access is Airflow's own: every route needs a signed-in user (the UI's session cookie or a bearer token, as Airflow's
REST API reads them); the run routes need one whom the auth manager lets read this DAG's runs and task instances
(``requires_access_dag`` with the DAG's id, so per-DAG roles work); without a user it answers 401, without access
403. Whether the user may trigger the DAG (the rerun button) is asked of the auth manager too.

The page renders what a run wrote as text only, and every answer carries a Content-Security-Policy that allows this
app's own script and style and nothing else (no inline script, nothing from another origin): a file named
``<img src=x onerror=...>.png`` is shown as that text. The page's "Rerun failed files" button posts to Airflow's
REST API with the user's own session, so Airflow decides whether that user may trigger the DAG. The app serves no
file of a run (the downloads are validation's lists): the outputs' place is shown, not served.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

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


def may_trigger(user: Any, dag_id: str) -> tuple[bool, str]:
    """Whether Airflow's auth manager lets the user trigger the DAG (create a DAG run), and why not."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    allowed = get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )
    return bool(allowed), "" if allowed else f"you may not trigger {dag_id}: ask for permission to run it"


def create_app() -> FastAPI:
    """The report app (one per API server process)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag

    from azureml_parallel_r.report.content import summary
    from azureml_parallel_r.report.failures import FailureLists, failure_page
    from azureml_parallel_r.report.services import ReadServices
    from azureml_parallel_r.report.sources import read_dag_run

    app = FastAPI(title="azureml-parallel-r run report", docs_url=None, redoc_url=None, openapi_url=None)
    read_runs = [
        Depends(requires_access_dag("GET", DagAccessEntity.RUN)),
        Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
    ]
    failure_lists = FailureLists()
    services = ReadServices()

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def found_run(dag_id: str, run_id: str, task_id: str | None, *, for_summary: bool = False) -> Any:
        found = read_dag_run(dag_id, run_id, task_id, for_summary=for_summary)
        if found is None:
            raise HTTPException(404, f"DAG {dag_id} has no run {run_id}")
        return found

    @app.get("/runs/{dag_id}/{run_id}/", dependencies=read_runs, response_class=HTMLResponse)
    def page(dag_id: str, run_id: str, task_id: str | None = None) -> HTMLResponse:
        found_run(dag_id, run_id, task_id)
        return HTMLResponse(_static("report.html"))

    @app.get("/runs/{dag_id}/{run_id}/summary", dependencies=read_runs)
    def run_summary(
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        user: Any = Depends(get_user),  # noqa: B008
    ) -> JSONResponse:
        found = found_run(dag_id, run_id, task_id, for_summary=True)
        return JSONResponse(summary(found, services, may_trigger=may_trigger(user, dag_id)))

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
        listed = failure_lists.get(found, services)
        return JSONResponse(failure_page(listed, offset=offset, limit=limit, text=text, kind=kind))

    _add_downloads(app, read_runs, found_run, failure_lists, services)

    # the page's script and style hold no data of any DAG: any signed-in user may load them (a user allowed one DAG
    # only must get them too, whatever the auth manager answers for "any DAG")
    @app.get("/static/{name}", dependencies=[Depends(get_user)])
    def static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, "not found")
        return Response(_static(name), media_type=STATIC[name])

    return app


def _download(chunks: Any, name: str, media_type: str) -> StreamingResponse:
    disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    return StreamingResponse(chunks, media_type=media_type, headers={"Content-Disposition": disposition})


def _file_stem(dag_id: str, run_id: str) -> str:
    return f"{dag_id}-{run_id}".replace("/", "_")


def _add_downloads(app: FastAPI, read_runs: list[Any], found_run: Any, failure_lists: Any, services: Any) -> None:
    """The downloads: every failed file (CSV, JSON Lines) and the slowest files (CSV)."""
    from azureml_parallel_r.report.failures import failures_csv, failures_jsonl, slowest_csv

    @app.get("/runs/{dag_id}/{run_id}/failures.csv", dependencies=read_runs)
    def failures_as_csv(dag_id: str, run_id: str, task_id: str | None = None) -> StreamingResponse:
        listed = failure_lists.get(found_run(dag_id, run_id, task_id), services)
        return _download(failures_csv(listed), f"{_file_stem(dag_id, run_id)}-failures.csv", "text/csv; charset=utf-8")

    @app.get("/runs/{dag_id}/{run_id}/failures.jsonl", dependencies=read_runs)
    def failures_as_jsonl(dag_id: str, run_id: str, task_id: str | None = None) -> StreamingResponse:
        listed = failure_lists.get(found_run(dag_id, run_id, task_id), services)
        name = f"{_file_stem(dag_id, run_id)}-failures.jsonl"
        return _download(failures_jsonl(listed), name, "application/x-ndjson; charset=utf-8")

    @app.get("/runs/{dag_id}/{run_id}/slowest.csv", dependencies=read_runs)
    def slowest_as_csv(dag_id: str, run_id: str, task_id: str | None = None) -> StreamingResponse:
        found = found_run(dag_id, run_id, task_id)
        name = f"{_file_stem(dag_id, run_id)}-slowest.csv"
        return _download(slowest_csv(found.validation), name, "text/csv; charset=utf-8")
