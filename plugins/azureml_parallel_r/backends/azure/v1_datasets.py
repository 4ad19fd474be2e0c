"""The SDK v1 engine's datasets: a folder registered as a FileDataset, a table as a TabularDataset, each version's
file list kept beside the data, and what the version's files are now. A part of
:class:`~azureml_parallel_r.backends.azure.v1.AzureMLBackend`, which provides ``workspace``, ``datastore()``,
``blobs()`` and ``_retry``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from azureml_parallel_r.backends.azure.storage import (
    DatastoreBlobs,
    dataset_files_blob,
    list_table,
    record_dataset_files,
    recorded_dataset_files,
)
from azureml_parallel_r.inputs import InputFolderError
from azureml_parallel_r.models import DatasetRef, listing_fingerprint

T = TypeVar("T")


class V1Datasets:
    """Registration and the registered files of SDK v1 datasets."""

    workspace: Any

    def datastore(self) -> Any:
        raise NotImplementedError

    def blobs(self) -> DatastoreBlobs:
        raise NotImplementedError

    def _retry(self, call: Callable[[], T], what: str) -> T:
        raise NotImplementedError

    def register_file_dataset(self, path: str, *, name: str, tags: dict[str, str]) -> DatasetRef:
        """Register ``path`` as the next version of ``name``, or reuse the latest version when it was
        registered for the same path, logical date and files (names, sizes, ETags: a folder whose files changed
        gets a new version). A missing or empty folder is not registered (0 files). The version's file list
        is kept on the datastore (``azureml-parallel-r/datasets/<name>/v<version>.files.json``) for validation.

        Dataset tags belong to the dataset, not to a version (the SDK's DatasetDto carries them; definitions
        do not), so only the latest version can be matched by its tags.
        """
        from azureml.core import Dataset

        entries = list(self.blobs().entries(path))
        if not entries:
            return DatasetRef(name, 0, path, 0)
        fingerprint = listing_fingerprint(entries)
        latest = self._latest_dataset(name)
        if latest is not None:
            latest_tags = latest.tags or {}
            same = latest_tags.get("path") == path and latest_tags.get("logical_date") == tags.get("logical_date")
            if same and latest_tags.get("fingerprint") == fingerprint:
                return DatasetRef(name, int(latest.version), path, len(entries), reused=True)
        dataset = Dataset.File.from_files(path=(self.datastore(), f"{path.rstrip('/')}/**"), validate=False)
        registered = self._retry(
            lambda: dataset.register(
                self.workspace,
                name,
                tags={**tags, "file_count": str(len(entries)), "fingerprint": fingerprint},
                create_new_version=True,
            ),
            f"registering dataset {name}",
        )
        ref = DatasetRef(name, int(registered.version), path, len(entries))
        record_dataset_files(self.blobs(), ref, entries)
        return ref

    def register_table_dataset(
        self, path: str, *, name: str, tags: dict[str, str], partition_keys: Sequence[str] = ()
    ) -> DatasetRef:
        """Register the table's folder as the next version of the TabularDataset ``name``, built from its MLTable file
        as SDK v1 builds one (:func:`~.v1_step.tabular_dataset`: SDK v1 reads no MLTable file), or reuse the latest
        version of the same path, date, files and keys, as :meth:`register_file_dataset` does. Its partitions are
        recorded when the MLTable puts the keys back from the folder names (nothing is downloaded)."""
        from azureml_parallel_r.backends.azure.v1_step import tabular_dataset

        keys = list(partition_keys)
        listing = list_table(self.blobs(), path, keys)
        found, entries = listing.partitions, listing.entries
        table: dict[str, Any] = {
            "kind": "table",
            "partition_keys": keys,
            "partitions": None if found is None else len(found),
        }
        if listing.spec is None:
            return DatasetRef(name, 0, path, 0, **table)
        try:
            dataset = tabular_dataset(self.datastore(), path, listing.spec)
        except ValueError as exc:
            raise InputFolderError(f"the table in {path!r} cannot be registered: {exc}") from exc
        fingerprint = listing_fingerprint([*entries, ("", 0, f"table:{','.join(keys)}")])
        latest = self._latest_dataset(name)
        if latest is not None:
            latest_tags = latest.tags or {}
            same = latest_tags.get("path") == path and latest_tags.get("logical_date") == tags.get("logical_date")
            if same and latest_tags.get("fingerprint") == fingerprint:
                return DatasetRef(name, int(latest.version), path, len(entries), reused=True, **table)
        extra = {"partition_keys": ",".join(keys)} | ({} if found is None else {"partitions": str(len(found))})
        registered = self._retry(
            lambda: dataset.register(
                self.workspace,
                name,
                tags={**tags, "file_count": str(len(entries)), "fingerprint": fingerprint, **extra},
                create_new_version=True,
            ),
            f"registering dataset {name}",
        )
        ref = DatasetRef(name, int(registered.version), path, len(entries), **table)
        record_dataset_files(self.blobs(), ref, entries, found)
        return ref

    def _latest_dataset(self, name: str) -> Any:
        from azureml.core import Dataset
        from azureml.exceptions import UserErrorException

        try:
            return self._retry(lambda: Dataset.get_by_name(self.workspace, name), f"getting dataset {name}")
        except UserErrorException:  # not registered yet
            return None

    def _files_record(self, dataset: DatasetRef) -> dict[str, Any] | None:
        return recorded_dataset_files(self.blobs(), dataset)

    def _files_record_name(self, dataset: DatasetRef) -> str:
        return dataset_files_blob(dataset.name, dataset.version)

    def current_entries(self, dataset: DatasetRef, files: Sequence[str]) -> Iterator[tuple[str, int, str]]:
        """The version's folder listed page by page: each blob's size and ETag (a blob written again has a new
        ETag)."""
        return self.blobs().entries(dataset.path)
