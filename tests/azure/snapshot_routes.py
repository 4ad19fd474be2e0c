"""The fake workspace's snapshot routes: the SDK uploads a step's source directory as a snapshot
(azureml/_restclient/snapshots_client.py, azureml/_base_sdk_common/project_snapshot_cache.py). A mixin of
:class:`tests.azure.workspace_service.WorkspaceService`."""

from __future__ import annotations

import uuid
from typing import Any

from tests.azure.wire import Call, Reply
from tests.azure.workspace import public_blob_url


class SnapshotRoutes:
    """Snapshots of source directories (state: ``snapshots``, ``latest_snapshot``)."""

    snapshots: dict[str, dict[str, Any]]
    latest_snapshot: str | None

    def blob_service(self) -> Any: ...

    def latest_snapshot_metadata(self, call: Call, match: Any) -> Reply:
        """The workspace's latest snapshot tree, which the SDK diffs against (ProjectSnapshotCache.
        get_latest_snapshot: reads ``id`` and ``root``; an empty ``root`` dict is an empty tree,
        DirTreeNode.load_children_from_dict). A workspace without snapshots answers an empty tree."""
        if self.latest_snapshot is None:
            return Reply(body={"id": None, "root": {}})
        snapshot = self.snapshots[self.latest_snapshot]
        return Reply(body={"id": self.latest_snapshot, "root": snapshot["DirTreeNode"]})

    def snapshot_blob_uris(self, call: Call, match: Any) -> Reply:
        """``snapshots/getblob``: one writable blob URL per file name (``fileNodes`` of ``fullName`` and
        ``blobUri``, SnapshotsClient._upload_snapshot_files); the SDK uploads each file there."""
        container = "snapshots"
        if not self.blob_service().get_container_client(container).exists():
            self.blob_service().create_container(container)
        upload = str(uuid.uuid4())
        nodes = [
            {"fullName": name, "blobUri": public_blob_url(container, f"{upload}/{name}", write=True)}
            for name in call.json()["FileNames"]
        ]
        return Reply(body={"fileNodes": nodes})

    def create_snapshot(self, call: Call, match: Any) -> Reply:
        """``snapshots/<id>``: the snapshot's tree and the blobs of its files (FileRevisionList.FileNodes with
        FullName and BlobUri, SnapshotsClient.create_snapshot). Files unchanged since the parent snapshot
        are not re-uploaded: they are taken from the parent (the SDK sends only the diff, compute_diff)."""
        body = call.json()
        files = {node["FullName"]: node["BlobUri"] for node in body["FileRevisionList"]["FileNodes"]}
        parent = self.snapshots.get(body.get("ParentSnapshotId") or "")
        if parent:
            files = {**parent["files"], **files}
        tree_files = set(_tree_files(body["DirTreeNode"]))
        self.snapshots[match["id"]] = {**body, "files": {k: v for k, v in files.items() if k in tree_files}}
        self.latest_snapshot = match["id"]
        return Reply(body={"id": match["id"]})


def _tree_files(node: dict[str, Any], prefix: str = "") -> list[str]:
    """File paths of a snapshot DirTreeNode (V2 encoding: ``children`` by name, ``type`` File/Directory)."""
    found = []
    for name, child in (node.get("children") or {}).items():
        if child.get("type") == "File":
            found.append(prefix + name)
        else:
            found.extend(_tree_files(child, f"{prefix}{name}/"))
    return found
