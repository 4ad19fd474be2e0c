"""The datastore's blobs as both Azure engines read and write them, on Azurite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azureml_parallel_r.backends.azure.storage import (
    DatastoreBlobs,
    datastore_location,
    datastore_uri,
    record_dataset_files,
    recorded_dataset_files,
    workspace_uri,
)
from azureml_parallel_r.models import DatasetRef, StorageLocation
from tests.azure.azurite import Azurite
from tests.azure.workspace import blob_service

pytestmark = pytest.mark.integration


@pytest.fixture
def retried() -> list[str]:
    """What went through the engine's retries, by name."""
    return []


@pytest.fixture
def blobs(retried: list[str]) -> Iterator[DatastoreBlobs]:
    azurite = Azurite()
    try:
        service = blob_service(azurite.url, str(azurite.ca))
        service.create_container("data")

        def retry(call, what: str):
            retried.append(what)
            return call()

        yield DatastoreBlobs(lambda: service.get_container_client("data"), retry)
    finally:
        azurite.stop()


def test_names_are_relative_to_their_prefix_and_each_call_goes_through_the_retries(
    blobs: DatastoreBlobs, retried: list[str]
) -> None:
    for name in ("in/2026/a.png", "in/2026/sub/b.png", "in/2027/c.png", "in/2026x/d.png"):
        blobs.write(name, b"x")
    assert sorted(blobs.names("in/2026")) == ["a.png", "sub/b.png"]
    assert [(name, size) for name, size, _etag in blobs.entries("in/2027/")] == [("c.png", 1)]
    assert "listing in/2026/" in retried and "uploading in/2026/a.png" in retried


def test_text_is_read_back_and_a_missing_blob_is_none(blobs: DatastoreBlobs) -> None:
    blobs.write("out/rows.txt", "é\n".encode())
    assert blobs.read_text("out/rows.txt") == "é\n" and blobs.read_text("out/none.txt") is None
    assert blobs.check_listable("out") == "data"


def test_a_dataset_versions_file_list_is_kept_beside_the_data(blobs: DatastoreBlobs) -> None:
    blobs.write("in/d/a.png", b"x")
    version = DatasetRef("inputs", 2, "in/d", 2)
    record_dataset_files(blobs, version, [("b.png", 2, '"0x2"'), ("a.png", 1, '"0x1"')])
    blobs.write("in/d/late.png", b"x")
    assert recorded_dataset_files(blobs, version) == {
        "path": "in/d",
        "files": ["a.png", "b.png"],
        "sizes": [1, 2],
        "stamps": ['"0x1"', '"0x2"'],
    }
    # a version whose list is gone has none: the folder's files now are not the version's
    assert recorded_dataset_files(blobs, DatasetRef("inputs", 1, "in/d", 1)) is None


def test_where_a_datastore_path_is() -> None:
    assert datastore_uri("workspaceblobstore", "/out/x/") == "azureml://datastores/workspaceblobstore/paths/out/x"
    assert datastore_location("acct", "data", "out") == StorageLocation("wasbs", "acct", "data", "out")
    assert datastore_location("acct", "", "out", adls_file_system="fs") == StorageLocation("abfss", "acct", "fs", "out")
    assert workspace_uri("s", "g", "w") == "azureml://subscriptions/s/resourceGroups/g/workspaces/w"
