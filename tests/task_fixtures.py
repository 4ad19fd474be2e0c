"""Fixtures for operator and sensor tests: a fake backend at the interface boundary, and a minimal task
context. Imported by the conftest.py of tests/operators and tests/sensors."""

from __future__ import annotations

import functools
from collections import defaultdict
from types import SimpleNamespace
from unittest import mock

import pendulum
import pytest

from azureml_parallel_r.backends.base import ParallelRunBackend
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.models import RegisteredFiles


class _OutletEvent:
    """What an operator sees of an outlet's asset event (airflow.sdk.execution_time.context.OutletEventAccessor)."""

    def __init__(self) -> None:
        self.extra: dict | None = None
        self.partition_keys: set[str] = set()

    def add_partitions(self, keys: str | list[str]) -> None:
        self.partition_keys.update([keys] if isinstance(keys, str) else keys)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> mock.Mock:
    fake = mock.create_autospec(ParallelRunBackend, instance=True)
    fake.processes_per_node.side_effect = lambda requested: requested or 4
    fake.r_packages = ()
    # the interface's own prepare (the connection's packages, the mini-batch size), over the fake's processes
    fake.prepare.side_effect = functools.partial(ParallelRunBackend.prepare, fake)
    # a version's registered files are what its list_dataset_files is set to (a test sets that), none changed since
    fake.registered_files.side_effect = lambda dataset: RegisteredFiles(sorted(fake.list_dataset_files(dataset)))
    fake.changed_files.return_value = {}
    monkeypatch.setattr(AzureMLParallelRunHook, "get_conn", lambda _hook: fake)
    return fake


@pytest.fixture
def context() -> dict:
    ti = mock.Mock(dag_id="r_parallel_batch", run_id="scheduled__2026-11-24", task_id="the_task")
    return {
        "ti": ti,
        "ds": "2026-11-24",
        "dag_run": SimpleNamespace(
            run_id=ti.run_id, logical_date=pendulum.datetime(2026, 11, 24), run_after=pendulum.datetime(2026, 11, 25, 6)
        ),
        "outlet_events": defaultdict(_OutletEvent),
    }
