"""The datastore's blob container as both Azure ML engines read and write it: straight with azure-storage-blob,
page by page, with the datastore's own account, container and credential (an account key, a SAS token, an ADLS
Gen2 datastore's service principal, or, for an identity-based datastore, the connection's identity, which then needs
*Storage Blob Data Contributor*: :mod:`.datastore_access`).

azure-storage-blob is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from azureml_parallel_r.models import DatasetRef, RegisteredFiles, StorageLocation

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

T = TypeVar("T")
DIRECTORY_MARK = "hdi_isfolder"  # the metadata that marks a directory of a hierarchical namespace
Retry = Callable[[Callable[[], Any], str], Any]
PAGE_SIZE = (
    5000  # the most one List Blobs call returns (https://learn.microsoft.com/rest/api/storageservices/list-blobs)
)


def container_client(
    account: str, container: str, credential: Any, *, endpoint: str | None = None, protocol: str | None = None
) -> ContainerClient:
    """A client of one blob container whose own retries are off: the engines' ``with_retries`` is the one layer.

    :param account: the storage account's name.
    :param container: the container's name.
    :param credential: an account key, a SAS token, or a token credential.
    :param endpoint: the storage endpoint suffix (default ``core.windows.net``).
    :param protocol: ``https`` (default) or ``http``.
    """
    from azure.storage.blob import ContainerClient

    account_url = f"{protocol or 'https'}://{account}.blob.{endpoint or 'core.windows.net'}"
    return ContainerClient(account_url, container, credential=credential, retry_total=0)


class DatastoreBlobs:
    """Blobs of a datastore's container, each service call retried on its own.

    :param container: returns the container's client (called once, when first needed).
    :param retry: runs a call with the engine's retries: ``retry(call, what)``.
    """

    def __init__(self, container: Callable[[], ContainerClient], retry: Retry) -> None:
        self._make_container = container
        self._container: ContainerClient | None = None
        self._retry = retry

    @property
    def container(self) -> ContainerClient:
        if self._container is None:
            self._container = self._make_container()
        return self._container

    def entries(self, prefix: str) -> Iterator[tuple[str, int, str]]:
        """(name relative to ``prefix/``, size, ETag) of every file below ``prefix``, every page. On a storage account
        with a hierarchical namespace (ADLS Gen2) a directory is an object of its own, which List Blobs returns as a
        zero-length blob ("directories appear in the list as zero-length blobs", https://learn.microsoft.com/azure/
        storage/blobs/storage-blobs-list#flat-listing-versus-hierarchical-listing) carrying the metadata
        ``hdi_isfolder=true``: it is not a file, and is left out."""
        base = prefix.rstrip("/") + "/"
        listing = self.container.list_blobs(name_starts_with=base, include=["metadata"], results_per_page=PAGE_SIZE)
        pages = listing.by_page()
        while True:
            page = self._retry(lambda: next(pages, None), f"listing {base}")
            if page is None:
                return
            for blob in self._retry(functools.partial(list, page), f"listing {base}"):
                if (blob.metadata or {}).get(DIRECTORY_MARK) != "true":
                    yield blob.name[len(base) :], int(blob.size or 0), str(blob.etag or "")

    def names(self, prefix: str) -> Iterator[str]:
        """Names of every blob below ``prefix``, relative to it."""
        for name, _size, _etag in self.entries(prefix):
            yield name

    def read_text(self, blob: str) -> str | None:
        """A blob's text (undecodable bytes replaced), or None when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        client = self.container.get_blob_client(blob)
        try:
            data = self._retry(lambda: client.download_blob().readall(), f"downloading {blob}")
        except ResourceNotFoundError:
            return None
        return data.decode("utf-8", errors="replace")

    def chunks(self, blob: str) -> Iterator[str]:
        """A blob's text in the pieces it is downloaded in (undecodable bytes replaced), read as iterated; nothing
        when it does not exist."""
        import codecs

        from azure.core.exceptions import ResourceNotFoundError

        client = self.container.get_blob_client(blob)
        try:
            download = self._retry(lambda: client.download_blob(), f"downloading {blob}")
        except ResourceNotFoundError:
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for piece in download.chunks():
            yield decoder.decode(piece)
        yield decoder.decode(b"", final=True)

    def check_listable(self, prefix: str) -> str:
        """List the first page below ``prefix`` (the credential can read the container); return the container's name,
        for the connection's Test."""
        next(iter(self.names(prefix)), None)
        return str(self.container.container_name)

    def write(self, blob: str, content: bytes) -> None:
        """Write (or replace) a blob."""
        client = self.container.get_blob_client(blob)
        self._retry(lambda: client.upload_blob(content, overwrite=True), f"uploading {blob}")

    def delete(self, blob: str) -> None:
        """Delete a blob."""
        client = self.container.get_blob_client(blob)
        self._retry(lambda: client.delete_blob(), f"deleting {blob}")

    def copy(self, source: str, target: str) -> None:
        """Copy a blob of this container to another name, streamed through this process in chunks: a plain read and
        write, which every datastore credential allows (a service-side Copy Blob needs the source authorized on its
        own: a SAS, or a user delegation key for an identity).

        :param source: the blob copied.
        :param target: its new name (replaced when there).
        """
        source_client = self.container.get_blob_client(source)
        target_client = self.container.get_blob_client(target)
        self._retry(
            lambda: target_client.upload_blob(source_client.download_blob().chunks(), overwrite=True),
            f"copying {source} to {target}",
        )


def datastore_location(
    account: str,
    container: str,
    path: str,
    *,
    adls_file_system: str | None = None,
) -> StorageLocation:
    """Where a path of a blob datastore lives (``wasbs``), or of an ADLS Gen2 one (``abfss``, its file system).

    :param account: the storage account.
    :param container: the blob container (a blob datastore).
    :param path: the path in the container or file system.
    :param adls_file_system: the file system of an ADLS Gen2 datastore.
    """
    if adls_file_system:
        return StorageLocation("abfss", account, adls_file_system, path)
    return StorageLocation("wasbs", account, container, path)


def datastore_uri(datastore: str, path: str) -> str:
    """A datastore path as Azure ML names it: ``azureml://datastores/<datastore>/paths/<path>``."""
    return f"azureml://datastores/{datastore}/paths/{path.strip('/')}"


def workspace_uri(subscription_id: str, resource_group: str, workspace: str) -> str:
    """A workspace as lineage names the system a run was done in."""
    return f"azureml://subscriptions/{subscription_id}/resourceGroups/{resource_group}/workspaces/{workspace}"


def dataset_files_blob(name: str, version: int) -> str:
    """Where a dataset version's file list is kept on the datastore."""
    return f"azureml-parallel-r/datasets/{name}/v{version}.files.json"


def record_dataset_files(
    blobs: DatastoreBlobs,
    dataset: DatasetRef,
    entries: list[tuple[str, int, str]],
    partitions: list[str] | None = None,
) -> None:
    """Keep a registered version's files beside the data, with each one's size and ETag (:class:`RegisteredFiles`),
    for validation: a file added to the folder later is not one of that version's files, and one whose blob changed
    since is not the content that was registered.

    :param blobs: the datastore.
    :param dataset: the registered version.
    :param entries: its (relative path, size, ETag) per file.
    :param partitions: a partitioned table's partitions (their outputs' folders).
    """
    blobs.write(
        dataset_files_blob(dataset.name, dataset.version),
        json.dumps(RegisteredFiles.record(dataset.path, entries, partitions)).encode(),
    )


def recorded_dataset_files(blobs: DatastoreBlobs, dataset: DatasetRef) -> dict[str, Any] | None:
    """The record a version's registration kept (:func:`record_dataset_files`), or None when it is gone."""
    recorded = blobs.read_text(dataset_files_blob(dataset.name, dataset.version))
    return None if recorded is None else json.loads(recorded)


@dataclass(frozen=True)
class TableListing:
    """A table's folder on a datastore, as its registration reads it: no data, only the listing and the MLTable file.

    :param entries: (relative path, size, ETag) of every file of the folder (none: missing or empty).
    :param spec: its MLTable file's content, once a parallel job can read it as a table (None without entries).
    :param partitions: its partitions' output folders, when the MLTable gives the keys from the paths (else None).
    """

    entries: list[tuple[str, int, str]]
    spec: dict[str, Any] | None = None
    partitions: list[str] | None = None


def list_table(blobs: DatastoreBlobs, path: str, partition_keys: Sequence[str]) -> TableListing:
    """Read a table's folder for its registration (both Azure engines): its listing and its MLTable file, checked as
    :func:`~azureml_parallel_r.mltable.check_mltable` checks it (what azure-ai-ml's own check would say, were its
    schema reachable), and its partitions from the folder names where the MLTable gives them. A folder without an
    MLTable file, or one a parallel job cannot read, raises ``InputFolderError`` saying what to fix.

    :param blobs: the datastore.
    :param path: the table's folder on it.
    :param partition_keys: the partition keys (none: mini-batches by size).
    """
    from azureml_parallel_r.inputs import InputFolderError
    from azureml_parallel_r.mltable import MLTABLE_FILE, check_mltable, not_a_table, partitions_from_paths

    entries = list(blobs.entries(path))
    if not entries:
        return TableListing(entries)
    text = blobs.read_text(f"{path.rstrip('/')}/{MLTABLE_FILE}")
    if text is None:
        raise not_a_table(path)
    try:
        spec = check_mltable(text)
        found = partitions_from_paths(spec, [e[0] for e in entries], partition_keys) if partition_keys else None
    except ValueError as exc:
        raise InputFolderError(f"the table in {path!r} cannot be read: {exc}") from exc
    if partition_keys and found is None:
        log.info("the partition keys %s are columns of the data: its partitions are known from the run", partition_keys)
    return TableListing(entries, spec, found)
