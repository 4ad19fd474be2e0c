"""The wire under the Azure SDKs: every HTTP request that azureml-core, azureml-pipeline-*, msal, msrest
and azure-storage-blob send goes through ``requests.adapters.HTTPAdapter.send``; this module replaces that
one method for the duration of a test.

- Requests to a loopback address pass through untouched (Azurite), trusting Azurite's certificate.
- Requests to the storage account's public blob host (``<account>.blob.core.windows.net``) are sent to
  Azurite's loopback port with their ``Host`` header unchanged: Azurite takes the account from a host name
  with a dot in it ("production-style URL", Azurite's blobStorageContext middleware), so the path, and with
  it the Shared Key canonicalised resource ``/<account>/<path>`` the client signed
  (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key), stays the same.
- Every other request is answered by a route of the fake service (:mod:`tests.azure.workspace_service`);
  a request no route knows is answered 501 and recorded in :attr:`Wire.unrouted`, which the fixtures
  assert empty, so an SDK call the fake does not model fails the test instead of passing by accident.
- :attr:`Wire.faults` injects answers (429/503 with Retry-After, connection errors) before the routes.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
BLOB_HOST = re.compile(r"^(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net$")


@dataclass
class Call:
    """One request as the SDK sent it (before any rewriting)."""

    method: str
    url: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """A route's answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


Handler = Callable[[Call, re.Match[str]], Reply]


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path`` (a regex) with ``reply``, or with what
    ``handler`` makes of the call, or raise ``error`` (a ``requests`` exception) as the transport would. With
    ``delivered``, the request first reaches the service (its route runs) and only then is ``error`` raised: the
    service did the work, its answer was lost on the way back."""

    method: str
    path: str
    times: int = 1
    reply: Reply | None = None
    error: BaseException | None = None
    handler: Callable[[Call], Reply] | None = None
    delivered: bool = False
    hits: int = 0


class Wire:
    """Routes, faults and the record of every call."""

    def __init__(self, azurite_url: str | None = None, azurite_ca: str | None = None) -> None:
        self.azurite_url = azurite_url
        self.azurite_ca = azurite_ca
        self.authorize_storage: Callable[[Call], Reply | None] | None = None
        self.routes: list[tuple[str, re.Pattern[str], re.Pattern[str], Handler]] = []
        self.calls: list[Call] = []
        self.unrouted: list[str] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def route(self, method: str, host: str, path: str, handler: Handler) -> None:
        """Answer ``method`` requests to ``host`` (regex) whose path matches ``path`` (regex) with ``handler``."""
        self.routes.append((method, re.compile(host), re.compile(path), handler))

    def fault(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method, path, **kwargs)
        self.faults.append(fault)
        return fault

    def calls_to(self, method: str, path: str) -> list[Call]:
        pattern = re.compile(path)
        return [c for c in self.calls if c.method == method and pattern.search(c.path)]

    # -- the transport ----------------------------------------------------------------------------------

    def send(self, adapter: HTTPAdapter, request: PreparedRequest, original: Callable[..., Response], **kw) -> Response:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        azurite = urlsplit(self.azurite_url or "")
        if host in LOOPBACK or host == "::1":
            if self.azurite_ca and parts.netloc == azurite.netloc:
                kw["verify"] = self.azurite_ca
            return original(adapter, request, **kw)
        blob = BLOB_HOST.match(host)
        if blob and self.azurite_url:
            call = self._record(request, parts)
            fault = self._fault(request.method or "", parts.path)
            if fault is not None:
                return self._fault_response(fault, adapter, request, call)
            refused = self.authorize_storage(call) if self.authorize_storage else None
            if refused is not None:
                return _response(adapter, request, refused)
            request.url = urlunsplit((azurite.scheme, azurite.netloc, parts.path, parts.query, ""))
            request.headers["Host"] = parts.netloc
            if self.azurite_ca:
                kw["verify"] = self.azurite_ca
            return original(adapter, request, **kw)
        call = self._record(request, parts)
        fault = self._fault(call.method, call.path)
        if fault is not None and not fault.delivered:
            return self._fault_response(fault, adapter, request, call)
        for method, host_pattern, path_pattern, handler in self.routes:
            if method == call.method and host_pattern.search(host):
                match = path_pattern.fullmatch(call.path)
                if match:
                    response = _response(adapter, request, handler(call, match))
                    if fault is not None:  # delivered: the service answered, the answer is lost
                        raise fault.error or lost_answer(request)
                    return response
        self.unrouted.append(f"{call.method} {request.url}")
        return _response(
            adapter,
            request,
            Reply(501, {"error": {"code": "NotModelled", "message": f"no route: {call.method} {request.url}"}}),
        )

    def _record(self, request: PreparedRequest, parts: Any) -> Call:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):  # a file or generator (uploads): read it
            body = body.read() if hasattr(body, "read") else b"".join(body)
            request.body = body
        call = Call(
            request.method or "",
            request.url or "",
            parts.hostname or "",
            parts.path,
            parse_qs(parts.query),
            dict(request.headers),
            body,
        )
        with self._lock:
            self.calls.append(call)
        return call

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits < fault.times and fault.method == method and re.search(fault.path, path):
                    fault.hits += 1
                    return fault
        return None

    def _fault_response(self, fault: Fault, adapter: HTTPAdapter, request: PreparedRequest, call: Call) -> Response:
        if fault.error is not None:
            raise fault.error
        if fault.handler is not None:
            return _response(adapter, request, fault.handler(call))
        return _response(adapter, request, fault.reply or Reply(503))


def lost_answer(request: PreparedRequest) -> requests.ConnectionError:
    """What ``HTTPAdapter.send`` raises when the connection drops before the answer arrives: urllib3's
    ProtocolError wrapped in requests' ConnectionError (requests/adapters.py, ``except (ProtocolError, OSError)``);
    azure-core's RequestsTransport turns it into ServiceResponseError."""
    reset = ConnectionResetError(104, "Connection reset by peer")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reset), request=request)


def _response(adapter: HTTPAdapter, request: PreparedRequest, reply: Reply) -> Response:
    """Build the answer the way ``HTTPAdapter`` does, from a urllib3 response over the bytes, so callers that
    stream (``raw``, ``iter_content``) see what a socket would give them."""
    if reply.raw is not None:
        content = reply.raw
    elif reply.body is None:
        content = b""
    else:
        content = json.dumps(reply.body).encode()
        reply.headers.setdefault("Content-Type", "application/json; charset=utf-8")
    raw = urllib3.HTTPResponse(
        body=io.BytesIO(content),
        headers={"Content-Length": str(len(content)), **reply.headers},
        status=reply.status,
        reason=HTTPStatus(reply.status).phrase,
        preload_content=False,
        decode_content=False,
        request_method=request.method,
    )
    return adapter.build_response(request, raw)


@contextmanager
def installed(wire: Wire) -> Iterator[Wire]:
    """Send every ``requests`` call of this process through ``wire`` while the block runs."""
    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: PreparedRequest, **kw: Any) -> Response:
        return wire.send(self, request, original, **kw)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield wire
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]
