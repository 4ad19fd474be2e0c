"""OpenLineage: what the submit and validate tasks read and write, for apache-airflow-providers-openlineage.

The provider calls the operators' ``get_openlineage_facets_on_complete`` when it is installed and enabled; this
module, and OpenLineage with it, is imported only from there, so nothing of OpenLineage is imported when the
provider is absent. Datasets are named by the OpenLineage naming spec (https://openlineage.io/docs/spec/naming),
through openlineage-python's own implementation of it (``openlineage.client.naming.dataset``): a blob folder
``wasbs://<container>@<account>.dfs.core.windows.net`` + its path, an ADLS Gen2 one ``abfss://...`` likewise, a
folder of the local engine's datastore ``file://<host>`` + its absolute path. The pipeline run's id is the run's
``externalQuery`` facet (ExternalQueryRunFacet: the id of the work in the system that did it, and that system).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from azureml_parallel_r.backends.base import ParallelRunBackend
    from azureml_parallel_r.models import StorageLocation


def dataset(location: StorageLocation) -> Any:
    """The OpenLineage dataset of a storage location.

    :param location: where the data is (:meth:`~azureml_parallel_r.backends.base.ParallelRunBackend.storage_location`).
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from openlineage.client.naming.dataset import ABFSS, WASBS, RemoteFileSystem

    path = location.path.rstrip("/") or "/"
    if location.scheme == "file":
        naming: Any = RemoteFileSystem(host=location.authority, path=path)
    elif location.scheme == "abfss":
        naming = ABFSS(container=str(location.container), service=location.authority, path=path)
    elif location.scheme == "wasbs":
        naming = WASBS(container=str(location.container), service_name=location.authority, object_key=path)
    else:
        raise ValueError(f"no OpenLineage naming for storage scheme {location.scheme!r}")
    return Dataset(namespace=naming.get_namespace(), name=naming.get_name())


def run_lineage(
    backend: ParallelRunBackend, *, inputs: list[str], outputs: list[str], run_id: str | None
) -> OperatorLineage:
    """The lineage of a task that read ``inputs`` and wrote ``outputs`` (datastore paths) for pipeline run
    ``run_id``.

    :param backend: the engine the paths are on.
    :param inputs: datastore paths read.
    :param outputs: datastore paths written.
    :param run_id: the pipeline run's id (None: no run facet).
    """
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    facets = {}
    if run_id:
        facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=run_id, source=backend.lineage_source())
    return OperatorLineage(
        inputs=[dataset(backend.storage_location(path)) for path in inputs],
        outputs=[dataset(backend.storage_location(path)) for path in outputs],
        run_facets=facets,
    )
