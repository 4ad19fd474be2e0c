"""The fake workspace's run history: experiments, runs (their records, statuses, tags, children, queries) and a
run's files as artifacts (azureml/_restclient/operations/experiment_operations.py, run_operations.py,
artifacts_client.py). A mixin of :class:`tests.azure.workspace_service.WorkspaceService`."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from tests.azure.odata import ODataFilter
from tests.azure.wire import Call, Reply
from tests.azure.workspace import now, public_blob_url


class RunHistoryRoutes:
    """Experiments, runs and their artifacts (state: ``experiments``, ``runs``)."""

    experiments: dict[str, dict[str, Any]]
    runs: dict[str, dict[str, Any]]

    def blob_service(self) -> Any: ...

    def get_experiment(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.get: 404 for an unknown experiment; Experiment(ws, name) then creates it
        (azureml/core/experiment.py, Experiment.__init__ with _create_in_cloud)."""
        experiment = self.experiments.get(match["experiment"])
        return (
            Reply(body=experiment)
            if experiment
            else Reply(404, {"error": {"code": "UserError", "message": "Experiment not found"}})
        )

    def create_experiment(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.create: an ExperimentDto (azureml/_restclient/models/experiment_dto.py)."""
        name = match["experiment"]
        self.experiments.setdefault(
            name, {"experimentId": str(uuid.uuid4()), "name": name, "tags": {}, "createdUtc": now()}
        )
        return Reply(body=self.experiments[name])

    def add_run(self, experiment: str, run_id: str, **fields: Any) -> dict[str, Any]:
        """Create a run record (a RunDto, azureml/_restclient/models/run_dto.py), as the pipeline service does
        when it creates a pipeline run or a step run. ``dataContainerId`` names the run's artifact container
        (``Run._container``, azureml/core/run.py, reads it; artifacts live at ``ExperimentRun/<container>``)."""
        self.create_experiment(Call("POST", "", "", "", {}, {}, b""), {"experiment": experiment})
        run = {
            "runId": run_id,
            "dataContainerId": f"dcid.{run_id}",
            "runUuid": str(uuid.uuid4()),
            "experimentId": self.experiments[experiment]["experimentId"],
            "status": "NotStarted",
            "createdUtc": now(),
            "tags": {},
            "properties": {},
            "runNumber": len(self.runs) + 1,
            **fields,
        }
        run.setdefault("rootRunId", run.get("parentRunId") or run_id)
        self.runs[run_id] = {"experiment": experiment, "dto": run}
        return run

    def get_run(self, call: Call, match: Any) -> Reply:
        """RunOperations.get (azureml/core/run.py, Run.__init__ and Run.get reads it): 404 for an unknown id."""
        record = self.runs.get(match["run"])
        if record is None or record["experiment"] != match["experiment"]:
            return Reply(404, {"error": {"code": "UserError", "message": f"Run {match['run']} not found"}})
        return Reply(body=record["dto"])

    def set_run_status(self, run_id: str, status: str) -> None:
        """The service moves a run through its statuses and stamps its start and end (RunDto startTimeUtc,
        endTimeUtc), which ``Run.get_details`` returns; a v1 run ends Finished, a v2 job Completed."""
        dto = self.runs[run_id]["dto"]
        dto["status"] = status
        if status == "Running":
            dto["startTimeUtc"] = now()
        if status in ("Finished", "Completed", "Failed", "Canceled"):
            dto.setdefault("startTimeUtc", now())
            dto["endTimeUtc"] = now()

    def get_run_by_id(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_by_id at workspace scope (Run.get(workspace, run_id): WorkspaceClient.get_run)."""
        record = self.runs.get(match["run"])
        return (
            Reply(body=record["dto"])
            if record
            else Reply(404, {"error": {"code": "UserError", "message": "Run not found"}})
        )

    def experiment_by_id(self, call: Call, match: Any) -> Reply:
        """ExperimentOperations.get_by_id (Run.get reads the run's experiment by its experimentId)."""
        for experiment in self.experiments.values():
            if experiment["experimentId"] == match["id"]:
                return Reply(body=experiment)
        return Reply(404, {"error": {"code": "UserError", "message": "Experiment not found"}})

    def run_details(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_details (Run.get_details): the RunDetailsDto fields the backend reads (status,
        startTimeUtc, endTimeUtc) are the run's own."""
        record = self.runs.get(match["run"])
        if record is None:
            return Reply(404, {"error": {"code": "UserError", "message": "Run not found"}})
        dto = record["dto"]
        keys = ("runId", "status", "startTimeUtc", "endTimeUtc", "tags", "properties", "target", "runDefinition")
        return Reply(body={**{k: dto[k] for k in keys if k in dto}, "logFiles": {}})

    def query_runs(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_by_query (Experiment.get_runs, Run.get_children): the experiment's runs that
        match the OData ``filter``, newest first, in pages of ``top`` with a ``continuationToken``
        (PaginatedRunDto; the SDK pages with azureml/_restclient/clientbase.py, _execute_with_arguments)."""
        body = call.json() or {}
        runs = [r["dto"] for r in self.runs.values() if r["experiment"] == match["experiment"]]
        if body.get("filter"):
            matches = ODataFilter(body["filter"]).parse()
            runs = [run for run in runs if matches(run)]
        runs.sort(key=lambda run: (run["createdUtc"], run["runNumber"]), reverse=True)
        start = int(body.get("continuationToken") or 0)
        top = int(body.get("top") or 100)
        page = runs[start : start + top]
        token = str(start + top) if start + top < len(runs) else None
        return Reply(body={"value": page, "continuationToken": token})

    def child_runs(self, call: Call, match: Any) -> Reply:
        """RunOperations.get_child (Run.get_children): the runs whose parentRunId is this run, one page."""
        children = [r["dto"] for r in self.runs.values() if r["dto"].get("parentRunId") == match["run"]]
        return Reply(body={"value": children, "continuationToken": None})

    def upload_run_file(self, run_id: str, name: str, content: bytes | str) -> None:
        """A file of a run: an artifact of origin ``ExperimentRun`` in the run's data container (RUN_ORIGIN and
        ``Run._container``, azureml/core/run.py), kept in the workspace's storage account."""
        data = content.encode() if isinstance(content, str) else content
        service = self.blob_service()
        if not service.get_container_client("azureml").exists():
            service.create_container("azureml")
        service.get_blob_client("azureml", f"ExperimentRun/dcid.{run_id}/{name}").upload_blob(data, overwrite=True)

    def list_artifacts(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.list_in_container (Run.get_file_names): the run's files as ArtifactDto
        (origin, container, path), one page."""
        container = self.blob_service().get_container_client("azureml")
        prefix = f"ExperimentRun/{match['container']}/"
        names = (
            [b.name[len(prefix) :] for b in container.list_blobs(name_starts_with=prefix)] if container.exists() else []
        )
        value = [{"origin": "ExperimentRun", "container": match["container"], "path": n} for n in names]
        return Reply(body={"value": value, "continuationToken": None})

    def content_info(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.get_content_information (Run.download_file): a readable blob URL (contentUri)
        that the SDK then downloads."""
        path = unquote(match["path"])
        blob = f"ExperimentRun/{match['container']}/{path}"
        if not self.blob_service().get_blob_client("azureml", blob).exists():
            return Reply(404, {"error": {"code": "UserError", "message": f"artifact {path} not found"}})
        return Reply(
            body={
                "contentUri": public_blob_url("azureml", blob),
                "origin": "ExperimentRun",
                "container": match["container"],
                "path": path,
            }
        )

    def content_info_by_prefix(self, call: Call, match: Any) -> Reply:
        """ArtifactOperations.list_sas_by_prefix (Run.get_details looks for the common runtime's logs under
        ``user_logs``, ``system_logs``...): the content information of the run's files under the prefix."""
        container = self.blob_service().get_container_client("azureml")
        base = f"ExperimentRun/{match['container']}/"
        prefix = base + unquote(match["prefix"])
        names = [b.name for b in container.list_blobs(name_starts_with=prefix)] if container.exists() else []
        value = [
            {
                "contentUri": public_blob_url("azureml", n),
                "origin": "ExperimentRun",
                "container": match["container"],
                "path": n[len(base) :],
            }
            for n in names
        ]
        return Reply(body={"value": value, "continuationToken": None})

    def patch_run(self, call: Call, match: Any) -> Reply:
        """RunOperations.patch: merges tags and properties and sets the other given fields; Experiment.submit
        sets a pipeline run's tags this way, after the run exists (azureml/core/experiment.py, submit ->
        run.set_tags)."""
        record = self.runs.get(match["run"])
        if record is None:
            return Reply(404, {"error": {"code": "UserError", "message": f"Run {match['run']} not found"}})
        body = call.json() or {}
        dto = record["dto"]
        for key, value in body.items():
            if key in ("tags", "properties") and value is not None:
                dto[key] = {**dto.get(key, {}), **value}
            elif value is not None and key not in ("runId",):
                dto[key] = value
        return Reply(body=dto)
