"""Both Azure ML engines on every kind of datastore an enterprise workspace has: account key, SAS token,
identity-based (no credential kept) blob, and ADLS Gen2 with a service principal or without a credential. Azurite
runs with ``--oauth basic``, so a token for another audience than Azure Storage is refused as the service refuses it,
and the fake's role assignments (:mod:`tests.azure.storage_roles`) decide what a token's identity may do."""

from __future__ import annotations

from pathlib import Path

import pytest

from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.output_checks import validate_outputs
from tests.azure.storage_roles import READER, token_claims
from tests.azure.workspace import ADLS_CLIENT_ID, CLIENT_ID, DATASTORE_KINDS, datastore_of_kind
from tests.backends.azure.cases import INPUTS, TAGS, sample_request
from tests.conftest import CONN_VARIABLE
from tests.waiting import wait_for_end

pytestmark = pytest.mark.integration
ENGINES = ("azureml", "azureml_v2")
KEY = {
    "dag_id": "r_parallel_batch",
    "dag_run_id": "scheduled__2026-11-24T00:00:00+00:00",
    "task_id": "submit_pipeline",
    "dataset": "r-script-inputs:1",
    "attempt": "1",
    "submission": "5a1b2c3d4e5f6a7b",
}


def _backend(fake_azure, monkeypatch, engine: str, datastore: str, tmp_path: Path):
    monkeypatch.setenv(
        CONN_VARIABLE, fake_azure.connection_value(engine=engine, datastore=datastore, r_script_dirs=[str(tmp_path)])
    )
    return AzureMLParallelRunHook().get_conn()


def _storage_tokens(fake_azure) -> list[dict]:
    """The claims of every bearer token sent to the storage account's public host."""
    claims = (token_claims(call) for call in fake_azure.wire.calls if call.host.endswith(".blob.core.windows.net"))
    return [claim for claim in claims if claim is not None]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", [kind for kind in DATASTORE_KINDS if kind != "account_key"])
def test_register_run_collect_and_validate_on_every_kind_of_datastore(
    fake_azure, monkeypatch, tmp_path, engine, kind
) -> None:
    from azureml_parallel_r.examples.samples import make_sample_inputs

    store = datastore_of_kind(kind)
    backend = _backend(fake_azure, monkeypatch, engine, store.name, tmp_path)
    make_sample_inputs(str(tmp_path / "inputs"), images=4)
    fake_azure.upload_inputs(tmp_path / "inputs", INPUTS, datastore=store.name)
    if store.adls:  # the directories of a hierarchical namespace are listed as blobs: not files
        assert f"{INPUTS}/camera-a" in fake_azure.blob_names(INPUTS, store.name)
    dataset = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)
    assert dataset.file_count == 9 and "camera-a" not in backend.list_dataset_files(dataset)
    ref = backend.submit(sample_request(dataset, KEY, "r-parallel-kinds"))
    assert wait_for_end(backend, ref.run_id).status == "Finished"
    results = backend.fetch_results(ref.run_id)
    registered = backend.registered_files(dataset)
    assert registered.files == backend.list_dataset_files(dataset)
    assert backend.changed_files(dataset, registered) == {}
    report = validate_outputs(registered.files, results, allowed_failures=1, dataset=dataset)
    assert report.passed, report.problems
    assert report.counts.succeeded == 8 and report.counts.failed == 1
    assert "results/camera-a/img_0000.png/thumbnail.png" in results.output_files
    written = fake_azure.blob_names("r-script-outputs/", store.name)  # on the datastore's own container
    assert any("/results/camera-a/img_0000.png/" in name for name in written)
    tokens = _storage_tokens(fake_azure)
    if store.credential_less:  # the connection's identity, with a token for Azure Storage
        assert tokens and {t["aud"] for t in tokens} == {"https://storage.azure.com"}
        assert {t["appid"] for t in tokens} == {CLIENT_ID}
    elif kind == "adls_sp":  # the datastore's own service principal, not the connection's
        assert tokens and {t["appid"] for t in tokens} == {ADLS_CLIENT_ID}
    else:
        assert tokens == []


@pytest.mark.parametrize("engine", ENGINES)
def test_an_identity_based_datastore_is_read_with_a_storage_token_where_azureml_core_would_send_an_arm_one(
    fake_azure, monkeypatch, tmp_path, engine
) -> None:
    """azureml-core's authentication answers every ``get_token`` with a token for Azure Resource Manager; Azurite,
    like Azure Storage, refuses it ("Invalid token audience"). The engines ask azure-identity for a storage token."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from azureml_parallel_r.backends.azure.storage import container_client

    store = datastore_of_kind("identity")
    backend = _backend(fake_azure, monkeypatch, engine, store.name, tmp_path)
    fake_azure.upload_inputs(Path(__file__).parent, INPUTS, datastore=store.name)
    assert backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS).file_count > 0
    if engine == "azureml":
        arm_only = container_client("devstoreaccount1", store.container, backend.workspace._auth)
        with pytest.raises((ClientAuthenticationError, HttpResponseError), match="audience"):
            next(iter(arm_only.list_blobs()))


@pytest.mark.parametrize("engine", ENGINES)
def test_an_identity_that_may_only_read_fails_with_the_role_it_lacks(fake_azure, monkeypatch, tmp_path, engine) -> None:
    from azureml_parallel_r.models import error_text

    store = datastore_of_kind("identity")
    backend = _backend(fake_azure, monkeypatch, engine, store.name, tmp_path)
    fake_azure.roles.assigned[CLIENT_ID] = READER
    fake_azure.upload_inputs(Path(__file__).parent, INPUTS, datastore=store.name)
    with pytest.raises(Exception) as raised:  # listing works; keeping the version's file list does not
        backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)
    assert "AuthorizationPermissionMismatch" in error_text(raised.value)


@pytest.mark.parametrize(("job_identity", "passes"), [(None, False), ("user_identity", True)])
def test_a_v2_job_reads_a_credential_less_datastore_with_the_identity_it_names(
    fake_azure, monkeypatch, tmp_path, job_identity, passes
) -> None:
    """Without a job identity the compute's managed identity reads the data (Azure's fallback); here it has no role
    on the storage, so the job fails saying so; named, the user identity (the connection's, which has the role) reads
    it and the job passes."""
    import dataclasses

    from azureml_parallel_r.examples.samples import make_sample_inputs
    from tests.azure.storage_roles import COMPUTE_IDENTITY

    store = datastore_of_kind("identity")
    backend = _backend(fake_azure, monkeypatch, "azureml_v2", store.name, tmp_path)
    del fake_azure.roles.assigned[COMPUTE_IDENTITY]
    make_sample_inputs(str(tmp_path / "inputs"), images=2)
    fake_azure.upload_inputs(tmp_path / "inputs", INPUTS, datastore=store.name)
    dataset = backend.register_file_dataset(INPUTS, name="r-script-inputs", tags=TAGS)
    request = dataclasses.replace(sample_request(dataset, KEY, "r-parallel-kinds"), job_identity=job_identity)
    ref = backend.submit(request)
    state = wait_for_end(backend, ref.run_id)
    (put,) = fake_azure.ml.job_puts
    (node,) = put["properties"]["jobs"].values()
    assert node.get("identity") == ({"identity_type": "UserIdentity"} if job_identity else None)
    if passes:
        assert state.status == "Finished"
    else:
        error = backend.fetch_results(ref.run_id).logs["step_error.txt"]
        assert state.status == "Failed" and COMPUTE_IDENTITY in error and "AuthorizationPermissionMismatch" in error


def test_a_v1_run_refuses_a_job_identity_before_submitting(fake_azure, monkeypatch, tmp_path) -> None:
    import dataclasses

    backend = _backend(fake_azure, monkeypatch, "azureml", "workspaceblobstore", tmp_path)
    request = dataclasses.replace(sample_request(_any_dataset(), KEY), job_identity="user_identity")
    with pytest.raises(ValueError, match="SDK v1 jobs always use the compute cluster's managed identity"):
        backend.check_request(request)
    backend.check_request(dataclasses.replace(request, job_identity="managed_identity"))


def _any_dataset():
    from azureml_parallel_r.models import DatasetRef

    return DatasetRef("r-script-inputs", 1, INPUTS, 1)
