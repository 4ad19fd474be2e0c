"""The engines the run report reads through, one per connection, kept briefly: the page refreshes every 5 s while a
run goes on and asks for a summary and a page of failures each time, and an Azure engine's first call costs a token
and a workspace read. One engine serves every request for a connection until it is ``ttl`` seconds old (a changed
connection is seen after that), and what never changes once it is known (a finished run's status, the compute's VM
size) is kept with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENGINE_TTL_SECONDS = 60.0


def hook_engine(conn_id: str) -> Any:
    """The engine of an Airflow connection, as the tasks get it (:class:`AzureMLParallelRunHook`)."""
    from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook

    return AzureMLParallelRunHook(azureml_parallel_r_conn_id=conn_id).get_conn()


@dataclass
class _Entry:
    engine: Any
    made: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    facts: dict[tuple[str, ...], Any] = field(default_factory=dict)  # what does not change: finished runs, VM size


class ReadServices:
    """One engine per connection id, made on first use and again once ``ttl`` seconds old.

    :param make: the engine of a connection id.
    :param ttl: how long one engine serves (seconds).
    :param clock: the time (monotonic seconds).
    """

    def __init__(
        self,
        make: Callable[[str], Any] = hook_engine,
        ttl: float = ENGINE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make, self.ttl, self.clock = make, ttl, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, conn_id: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(conn_id)
            if entry is not None and self.clock() - entry.made < self.ttl:
                return entry
        engine = self.make(conn_id)  # outside the lock: an Azure engine's setup must not hold up other connections
        with self._lock:
            entry = self._entries[conn_id] = _Entry(engine, self.clock())
        return entry

    def __call__(self, conn_id: str) -> Any:
        """The connection's engine.

        :param conn_id: the Airflow connection.
        """
        return self._entry(conn_id).engine

    def fact(self, conn_id: str, key: tuple[str, ...], read: Callable[[Any], Any], keep: Callable[[Any], bool]) -> Any:
        """What ``read`` answers for the connection's engine, kept with the engine once ``keep`` says it is final.

        :param conn_id: the Airflow connection.
        :param key: what is asked (``("status", run_id)``, ``("compute",)``).
        :param read: reads it from the engine.
        :param keep: whether an answer will not change (a finished run's status).
        """
        entry = self._entry(conn_id)
        with entry.lock:
            if key in entry.facts:
                return entry.facts[key]
        value = read(entry.engine)
        if keep(value):
            with entry.lock:
                entry.facts[key] = value
        return value
