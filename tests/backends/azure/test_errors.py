"""Transient errors are told by type and HTTP status, and the one retry layer waits as long as the service asks."""

from __future__ import annotations

import pytest

from azureml_parallel_r.backends.azure.errors import is_transient, retry_after, with_retries


def test_transient_errors_are_told_by_type_and_status_never_by_text() -> None:
    import requests
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    def http_error(status_code: int, headers: dict | None = None) -> requests.HTTPError:
        response = requests.Response()
        response.status_code, response.headers = status_code, requests.structures.CaseInsensitiveDict(headers or {})
        return requests.HTTPError(response=response)

    assert is_transient(http_error(429)) and is_transient(http_error(503)) and is_transient(http_error(408))
    assert not is_transient(http_error(404)) and not is_transient(http_error(400))
    assert not is_transient(http_error(501)) and is_transient(http_error(500)) and is_transient(http_error(504))
    assert is_transient(requests.ConnectionError("reset")) and is_transient(ServiceRequestError("dns"))
    assert not is_transient(ValueError("the folder holds 1500 files (HTTP 503, timed out)"))
    error = HttpResponseError(message="throttled")
    error.status_code = 429
    assert is_transient(error)
    assert retry_after(http_error(429, {"Retry-After": "7"})) == 7.0


def test_retries_wait_as_long_as_the_service_asks() -> None:
    import requests

    response = requests.Response()
    response.status_code, response.headers = 503, requests.structures.CaseInsensitiveDict({"Retry-After": "9"})
    calls, waits = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise requests.HTTPError(response=response)
        return "ok"

    assert with_retries(flaky, "reading", backoff=0.5, sleep=waits.append) == "ok"
    assert waits == [9.0, 9.0]
    with pytest.raises(ValueError):
        with_retries(lambda: (_ for _ in ()).throw(ValueError("permanent")), "x", sleep=waits.append)
    assert len(waits) == 2
