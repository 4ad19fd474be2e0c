"""Trigger: polls a pipeline run's status asynchronously in the triggerer until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook


class ParallelRunTrigger(BaseTrigger):
    """Fires once when the pipeline run is Finished, Failed or Canceled.

    It holds no state but its arguments, so after a triggerer restart it simply polls again. It does not
    retry a failed status read itself: the backend is the one retry layer (the Azure ML backend retries
    transient service errors, honouring ``Retry-After``), so an error that reaches the trigger ends the wait
    with an error event that says so, and the task's own retries take over.

    :param run_id: the pipeline run id.
    :param conn_id: the Airflow connection that selects the engine.
    :param poll_interval: seconds between status reads.
    """

    def __init__(self, run_id: str, conn_id: str, poll_interval: float = 30.0) -> None:
        super().__init__()
        self.run_id = run_id
        self.conn_id = conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"run_id": self.run_id, "conn_id": self.conn_id, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            backend = await AzureMLParallelRunHook(conn_id=self.conn_id).aget_backend()
        except Exception as exc:
            yield TriggerEvent({"status": "error", "message": str(exc), "run_id": self.run_id})
            return
        while True:
            try:
                state = await asyncio.to_thread(backend.get_status, self.run_id)
            except Exception as exc:
                message = f"cannot read the status of pipeline run {self.run_id}: {type(exc).__name__}: {exc}"
                yield TriggerEvent({"status": "error", "message": message, "run_id": self.run_id})
                return
            if state.terminal:
                yield TriggerEvent(
                    {
                        "status": "success" if state.succeeded else "error",
                        "message": f"Pipeline run {self.run_id} is {state.status}: {state.message}",
                        "run_id": self.run_id,
                        "run_status": state.status,
                    }
                )
                return
            self.log.info("Pipeline run %s is %s %s", self.run_id, state.status, state.counts or "")
            await asyncio.sleep(self.poll_interval)
