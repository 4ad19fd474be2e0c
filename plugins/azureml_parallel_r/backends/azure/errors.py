"""Transient service errors and the one retry layer both Azure ML engines use.

Transient errors are recognised by exception type and HTTP status (408, 429, 500, 502-504, connection and read errors),
never by message text, and ``Retry-After`` is honoured. :func:`with_retries` is the engines' one retry layer: the
blob clients' and azure-ai-ml's own retries are off (``retry_total=0``). azureml-core's REST clients keep a retry
loop of their own that cannot be switched off from outside the SDK (azureml/_restclient/clientbase.py,
``_execute_func_internal``: 3 retries of 408/429/5xx, after ``AZUREML_DEFAULT_BACKOFF`` seconds (32) for a 429,
without reading ``Retry-After``); an error that outlasts it reaches :func:`with_retries`.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from azureml_parallel_r.models import error_text

T = TypeVar("T")
log = logging.getLogger(__name__)


def _error_chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (azureml's ``inner_exception``, ``raise ... from``), where a status or a
    transport error may sit."""
    return [e for e in (error, getattr(error, "inner_exception", None), error.__cause__) if e is not None]


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind an SDK or transport exception, if it carries one."""
    for candidate in _error_chain(error):
        response = getattr(candidate, "response", None)
        for value in (
            getattr(candidate, "status_code", None),
            getattr(response, "status_code", None),
            getattr(response, "status", None),
        ):
            if isinstance(value, int):
                return value
    return None


def retry_after(error: BaseException) -> float | None:
    """Seconds the service asked to wait (``Retry-After``: delta-seconds or an HTTP date), if it did."""
    for candidate in _error_chain(error):
        headers = getattr(getattr(candidate, "response", None), "headers", None)
        value = headers.get("Retry-After") if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, (parsed - datetime.now(UTC)).total_seconds())
    return None


def describe_error(error: BaseException) -> str:
    """``Type (HTTP status): message`` for any exception (see :func:`~azureml_parallel_r.models.error_text`)."""
    status = http_status(error)
    text = error_text(error)
    return text.replace(type(error).__name__, f"{type(error).__name__} (HTTP {status})", 1) if status else text


RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying, by type and HTTP status as azure-core's RetryPolicy decides
    (azure/core/pipeline/policies/_retry.py, ``_RETRY_CODES``): 408, 429, 500, 502, 503, 504 and statuses from 506
    up; connection and read errors, timeouts. Not 501 (Not Implemented) or 505. Never by the text of a message."""
    import requests
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    status = http_status(error)
    if status is not None:
        return status in RETRIED_STATUSES or status >= 506
    transient = (
        requests.ConnectionError,
        requests.Timeout,
        ServiceRequestError,
        ServiceResponseError,
        ConnectionError,
        TimeoutError,
    )
    return any(isinstance(e, transient) for e in _error_chain(error))


def with_retries(
    call: Callable[[], T],
    what: str,
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``call``, retrying transient service errors: exponential backoff (2, 4, 8, ... s), or what the
    service's ``Retry-After`` asks when that is longer.

    :param call: the service call.
    :param what: what it does, for the log and the final error.
    :param attempts: tries in all.
    :param backoff: the first delay in seconds (doubles each time).
    :param sleep: how to wait (default ``time.sleep``, looked up at each wait; tests pass a recorder).
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = max(backoff * 2 ** (attempt - 1), retry_after(exc) or 0.0)
            log.warning(
                "%s failed (%s), try %d of %d; retrying in %.0f s", what, describe_error(exc), attempt, attempts, delay
            )
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")
