"""Trigger: polls a pipeline run's status asynchronously in the triggerer until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook, inline_in_dag_test
from azureml_parallel_r.models import error_text


class ParallelRunTrigger(BaseTrigger):
    """Fires once when the pipeline run is Finished, Failed or Canceled.

    It holds no state but its arguments, so after a triggerer restart it simply polls again. It does not
    retry a failed status read itself: the backend is the one retry layer (the Azure ML backend retries
    transient service errors, honouring ``Retry-After``), so an error that reaches the trigger ends the wait
    with an error event that says so, and the task's own retries take over.

    When a user stops the waiting task (mark failed or success, clear) while it is deferred, Airflow 3.3 and later
    call :meth:`on_kill` in the triggerer, which cancels the pipeline run (with ``cancel_on_kill``). It is not
    called when the trigger moves to another triggerer, restarts or times out, so those leave the run going.
    Airflow 3.1 and 3.2 never call it (:data:`~azureml_parallel_r.airflow_versions.TRIGGER_ON_KILL`): there a
    stopped deferred task leaves its pipeline run going until it ends or is canceled in Azure ML studio.

    :param run_id: the pipeline run id.
    :param azureml_parallel_r_conn_id: the Airflow connection that selects the engine.
    :param poll_interval: seconds between status reads.
    :param cancel_on_kill: cancel the pipeline run when a user stops the deferred task.
    """

    def __init__(
        self, run_id: str, azureml_parallel_r_conn_id: str, poll_interval: float = 30.0, cancel_on_kill: bool = True
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.azureml_parallel_r_conn_id = azureml_parallel_r_conn_id
        self.poll_interval = poll_interval
        self.cancel_on_kill = cancel_on_kill

    def _hook(self) -> AzureMLParallelRunHook:
        return AzureMLParallelRunHook(azureml_parallel_r_conn_id=self.azureml_parallel_r_conn_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "run_id": self.run_id,
                "azureml_parallel_r_conn_id": self.azureml_parallel_r_conn_id,
                "poll_interval": self.poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def on_kill(self) -> None:
        """A user stopped the deferred task: cancel the pipeline run it waits for."""
        if not self.cancel_on_kill:
            return
        backend = await self._hook().aget_conn()
        state = await asyncio.to_thread(backend.cancel, self.run_id)
        self.log.info("Task stopped by a user: pipeline run %s canceled (now %s)", self.run_id, state.status)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            backend = await self._hook().aget_conn()
        except Exception as exc:
            yield TriggerEvent({"status": "error", "message": str(exc), "run_id": self.run_id})
            return
        try:
            async for event in self._poll(backend):
                yield event
                return
        except asyncio.CancelledError:
            # `airflow dags test` runs this trigger inline; Ctrl-C there cancels it, and nothing else would
            # stop the run it started. A real triggerer cancels triggers that move or shut down: leave those.
            if self.cancel_on_kill and inline_in_dag_test():
                await asyncio.shield(asyncio.to_thread(backend.cancel, self.run_id))
                self.log.info("Interrupted: pipeline run %s canceled", self.run_id)
            raise

    async def _poll(self, backend: Any) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                state = await asyncio.to_thread(backend.get_status, self.run_id)
            except Exception as exc:
                message = f"cannot read the status of pipeline run {self.run_id}: {error_text(exc)}"
                yield TriggerEvent({"status": "error", "message": message, "run_id": self.run_id})
                return
            if state.terminal:
                message = f"Pipeline run {self.run_id} is {state.status}: {state.message}"
                event = {
                    "status": "success" if state.succeeded else "error",
                    "message": message,
                    "run_id": self.run_id,
                    "run_status": state.status,
                }
                if not state.succeeded:  # the failure summary travels with the event: the task reads nothing again
                    event["summary"] = await asyncio.to_thread(backend.describe_failure, self.run_id, message)
                yield TriggerEvent(event)
                return
            self.log.info("Pipeline run %s is %s %s", self.run_id, state.status, state.counts or "")
            await asyncio.sleep(self.poll_interval)
