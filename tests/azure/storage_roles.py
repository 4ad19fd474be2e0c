"""The storage account's role assignments: which identity may read or write blobs with a bearer token.

Azurite checks a token's issuer, audience and lifetime but not what its holder may do (its README: "Azurite will NOT
check token signature and permission"); Azure Storage authorizes a token's request by the Azure roles assigned to its
principal (https://learn.microsoft.com/azure/storage/blobs/authorize-access-azure-active-directory). This module models
the two data roles Azure ML's documents ask for (https://learn.microsoft.com/azure/role-based-access-control/
built-in-roles/storage): *Storage Blob Data Reader* (read and list) and *Storage Blob Data Contributor* (read, write,
delete). A request its principal's role does not allow is refused as the service refuses it: 403
``AuthorizationPermissionMismatch``, "This request is not authorized to perform this operation using this permission."
(https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes). Requests signed with an account key or
a SAS are not the roles' business: Azurite checks those itself.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from tests.azure.wire import Call, Reply
from tests.azure.workspace import ADLS_CLIENT_ID, CLIENT_ID

READER = "Storage Blob Data Reader"
CONTRIBUTOR = "Storage Blob Data Contributor"
READS = ("GET", "HEAD")
# the compute cluster's system-assigned managed identity (the fake's clusters have one, as the docs ask for
# identity-based data access: "Create compute with managed identity enabled")
COMPUTE_IDENTITY = "compute-cluster-managed-identity"


def token_claims(call: Call) -> dict | None:
    """The claims of a request's bearer token (not verified: Azurite checks what the service checks), or None."""
    header = call.headers.get("Authorization") or call.headers.get("authorization") or ""
    if not header.startswith("Bearer "):
        return None
    payload = header.removeprefix("Bearer ").split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class StorageRoles:
    """Role assignments on the account, by application id (the token's ``appid``): the connection's service
    principal and the ADLS Gen2 datastore's are contributors unless a test says otherwise."""

    assigned: dict[str, str] = field(
        default_factory=lambda: {CLIENT_ID: CONTRIBUTOR, ADLS_CLIENT_ID: CONTRIBUTOR, COMPUTE_IDENTITY: CONTRIBUTOR}
    )

    def allows(self, principal: str, write: bool) -> bool:
        """Whether ``principal``'s role lets it read (or, with ``write``, write) blobs."""
        role = self.assigned.get(principal)
        return role == CONTRIBUTOR or (role == READER and not write)

    def authorize(self, call: Call) -> Reply | None:
        """None when the request may go on to the account, else the service's refusal."""
        claims = token_claims(call)
        if claims is None:
            return None
        if self.allows(str(claims.get("appid")), write=call.method not in READS):
            return None
        message = "This request is not authorized to perform this operation using this permission."
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code>'
            f"<Message>{message}</Message></Error>"
        )
        headers = {"Content-Type": "application/xml", "x-ms-error-code": "AuthorizationPermissionMismatch"}
        return Reply(403, raw=body.encode(), headers=headers)
