"""One engine per connection in the API server, kept briefly, and what does not change kept with it."""

from __future__ import annotations

from types import SimpleNamespace

from azureml_parallel_r.report.services import ReadServices


def test_one_engine_serves_a_connection_until_it_is_ttl_old() -> None:
    made: list[str] = []
    now = [0.0]

    def make(conn_id: str) -> object:
        made.append(conn_id)
        return SimpleNamespace(conn_id=conn_id, n=len(made))

    services = ReadServices(make=make, ttl=60, clock=lambda: now[0])
    first = services("a")
    for now[0] in (1.0, 30.0, 59.9):  # the page's 5 s refreshes, the summary and the failures of each
        assert services("a") is first
    assert services("b") is not first and made == ["a", "b"]
    now[0] = 60.0
    assert services("a") is not first and made == ["a", "b", "a"]  # a changed connection is seen after the ttl


def test_a_finished_runs_status_is_read_once_and_a_running_ones_each_time() -> None:
    reads: list[str] = []

    def status(engine: object, run_id: str, terminal: bool) -> object:
        reads.append(run_id)
        return SimpleNamespace(terminal=terminal)

    services = ReadServices(make=lambda _c: object(), ttl=3600)
    for _ in range(3):
        services.fact("c", ("status", "done"), lambda e: status(e, "done", True), lambda s: s.terminal)
        services.fact("c", ("status", "going"), lambda e: status(e, "going", False), lambda s: s.terminal)
    assert reads.count("done") == 1 and reads.count("going") == 3
