"""Which identity an Azure ML job reads and writes its data with (SDK v2's job ``identity``).

Azure ML's rule (https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication,
"Access data for training jobs"): a datastore that keeps a credential (account key, SAS token, service principal) is
accessed with it whatever the job says; on a credential-less datastore the job uses the identity it names, and "If
the identity property is left unspecified and datastore doesn't have cached credentials, then compute managed
identity becomes the fallback option". SDK v1 jobs always use the compute's managed identity.

- unset: no identity on the job, Azure's default; the compute cluster's managed identity needs the storage role.
- ``managed_identity``: ``ManagedIdentityConfiguration()``; the same identity, named.
- ``managed_identity:<client id>``: ``ManagedIdentityConfiguration(client_id=...)``; that user-assigned identity of
  the cluster needs the role.
- ``user_identity``: ``UserIdentityConfiguration()``; whoever submits (the connection's identity) needs the role.
- ``aml_token``: ``AmlTokenConfiguration()``; for credential-based datastores only.

The step sets it on the parallel node itself: "we recommend setting user identity at the individual step level".
"""

from __future__ import annotations

from typing import Any

USER, MANAGED, AML_TOKEN = "user_identity", "managed_identity", "aml_token"
JOB_IDENTITIES = (USER, MANAGED, AML_TOKEN)


def parse_job_identity(value: str | None) -> tuple[str, str | None] | None:
    """(kind, client id of a user-assigned managed identity) of a job identity setting; None when unset.

    :param value: ``user_identity``, ``managed_identity``, ``managed_identity:<client id>``, ``aml_token``, or unset.
    """
    text = str(value or "").strip()
    if not text:
        return None
    kind, _, client_id = text.partition(":")
    if kind not in JOB_IDENTITIES or (client_id and kind != MANAGED):
        raise ValueError(
            f"job_identity={value!r}: expected one of {', '.join(JOB_IDENTITIES)} or managed_identity:<client id> "
            "(unset: Azure's default, the compute cluster's managed identity on a datastore without credentials)"
        )
    return kind, client_id.strip() or None


def v2_identity(value: str | None) -> Any:
    """The azure-ai-ml identity configuration of a setting (None: unset, Azure's default)."""
    parsed = parse_job_identity(value)
    if parsed is None:
        return None
    from azure.ai.ml.entities import AmlTokenConfiguration, ManagedIdentityConfiguration, UserIdentityConfiguration

    kind, client_id = parsed
    if kind == USER:
        return UserIdentityConfiguration()
    if kind == AML_TOKEN:
        return AmlTokenConfiguration()
    return ManagedIdentityConfiguration(client_id=client_id) if client_id else ManagedIdentityConfiguration()


def check_v1_identity(value: str | None) -> None:
    """SDK v1 jobs always read data with the compute's managed identity: any other setting is refused.

    :param value: the run's job identity setting.
    """
    parsed = parse_job_identity(value)
    if parsed is not None and parsed != (MANAGED, None):
        raise ValueError(
            f"job_identity={value!r} needs the SDK v2 engine: SDK v1 jobs always use the compute cluster's managed "
            "identity. Set the connection's engine to azureml_v2, or leave job_identity unset"
        )
