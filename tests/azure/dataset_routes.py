"""The fake workspace's dataset routes (azureml/_restclient/operations/dataset_operations.py) and the data service's
view of a saved dataset. A mixin of :class:`tests.azure.workspace_service.WorkspaceService`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.azure.wire import Call, Reply


class DatasetRoutes:
    """Registered datasets and their versions (state: ``datasets``, ``saved_datasets``)."""

    datasets: dict[str, dict[str, Any]]
    saved_datasets: dict[str, dict[str, Any]]

    def register_dataset(self, call: Call, match: Any) -> Reply:
        """DatasetOperations.register as AbstractDataset._register calls it (azureml/data/abstract_dataset.py):
        a new name creates version 1; an existing name with ``updateDefinitionIfExists=true``
        (create_new_version=True) adds the next version, else 409 (the SDK turns 409 into 'There is already a
        dataset registered under name'). Tags and description belong to the dataset, not to a version
        (DatasetDto carries them, DatasetDefinitionDto does not; azureml/_restclient/models), so a new
        version's tags replace the dataset's."""
        dto = call.json()
        name = dto["name"]
        update = call.query.get("updateDefinitionIfExists", ["false"])[0] == "true"
        entry = self.datasets.get(name)
        if entry is not None and not update:
            return Reply(409, {"error": {"code": "UserError", "message": f"Dataset {name} already exists"}})
        if entry is None:
            entry = self.datasets[name] = {"id": str(uuid.uuid4()), "versions": []}
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        definition = {
            **dto["latest"],
            "datasetId": entry["id"],
            "versionId": str(len(entry["versions"]) + 1),
            "savedDatasetId": str(uuid.uuid4()),
            "createdTime": now,
            "modifiedTime": now,
        }
        entry["versions"].append(definition)
        self.saved_datasets[definition["savedDatasetId"]] = {
            "id": definition["savedDatasetId"],
            "dataflowJson": definition.get("dataflow"),
        }
        entry["dto"] = {**dto, "datasetId": entry["id"], "createdTime": now, "modifiedTime": now, "etag": now}
        return Reply(body={**entry["dto"], "latest": definition})

    def unregister_dataset(self, call: Call, match: Any) -> Reply:
        """DatasetOperations.unregister_dataset as ``Dataset.unregister_all_versions`` calls it ("Unregister all
        versions under the registration name of this dataset from the workspace", azureml/data/abstract_dataset.py):
        a DELETE answered 200 (the only status the SDK accepts). A name with no registration is a 404, as reading it
        is: nothing documents a DELETE of one, and the fake refuses it."""
        if self.datasets.pop(match["name"], None) is None:
            return Reply(404, {"error": {"code": "UserError", "message": f"no dataset {match['name']}"}})
        return Reply(200)

    def dataset_by_name(self, call: Call, match: Any) -> Reply:
        """DatasetOperations.get_dataset_by_name (Dataset.get_by_name): the named version (``versionId``) or the
        latest; 404 for an unknown name or version, which the SDK reports as 'Cannot find dataset registered
        with name' (azureml/data/_dataset_rest_helper.py)."""
        entry = self.datasets.get(match["name"])
        version = call.query.get("versionId", [None])[0]
        if entry is None or (version and not 1 <= int(version) <= len(entry["versions"])):
            return Reply(404, {"error": {"code": "UserError", "message": f"Dataset {match['name']} not found"}})
        definition = entry["versions"][int(version) - 1] if version else entry["versions"][-1]
        return Reply(body={**entry["dto"], "latest": definition})

    def dataversion(self, call: Call, match: Any) -> Reply:
        """The data service's view of a saved dataset: ``legacyDataflow`` is its RSLex (MLTable) YAML, which the
        SDK fetches for every dataset it loads (azureml/data/_dataset_rest_helper.py, _fetch_rslex_dataflow_yaml)
        and which the SDK itself wrote into the dataflow JSON as ``meta.RsDataflow`` when the dataset was made."""
        name = match["name"]
        saved = self.saved_datasets.get(name[len("unregistered-") :]) if name.startswith("unregistered-") else None
        if saved is None:  # a v1 dataset is no v2 data asset: Dataset.get_by_name then reports the v1 404
            return Reply(404, {"error": {"code": "UserError", "message": "not found"}})
        return Reply(body={"legacyDataflow": json.loads(saved["dataflowJson"])["meta"]["RsDataflow"]})

    def dataset_rslex_yaml(self, dataset_id: str, version: str | None) -> str:
        """The RSLex YAML of a registered dataset version (what the data service returns as legacyDataflow)."""
        for entry in self.datasets.values():
            if entry["id"] == dataset_id:
                definition = entry["versions"][int(version) - 1] if version else entry["versions"][-1]
                return json.loads(definition["dataflow"])["meta"]["RsDataflow"]
        raise KeyError(f"no dataset {dataset_id}")
