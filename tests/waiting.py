"""The tests' one way to wait: on a state, polled with a bound, never on a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from azureml_parallel_r.backends.base import ParallelRunBackend
    from azureml_parallel_r.models import RunState

T = TypeVar("T")


class WaitTimedOut(AssertionError):
    """What a test waited for did not come in time."""


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Call ``check`` until it returns something other than None or False, and return that; fail after ``timeout``.

    :param check: reads the state waited for.
    :param timeout: seconds before giving up (a bound, not an expectation: nothing waits this long when all is well).
    :param what: what is waited for, for the failure message.
    :param interval: seconds between two reads.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise WaitTimedOut(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_for_end(backend: ParallelRunBackend, run_id: str, timeout: float = 180) -> RunState:
    """A run's state once it has ended (its engine's own status, polled).

    :param backend: the engine the run was submitted to.
    :param run_id: the run.
    :param timeout: seconds before giving up.
    """

    def ended() -> RunState | None:
        state = backend.get_status(run_id)
        return state if state.terminal else None

    return wait_until(ended, timeout=timeout, what=f"run {run_id} to end")
