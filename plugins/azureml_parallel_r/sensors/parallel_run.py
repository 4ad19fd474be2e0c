"""Sensor: wait for a pipeline run to finish (poke, reschedule or deferrable)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from azureml_parallel_r import status as run_status
from azureml_parallel_r.airflow_versions import AIRFLOW_VERSION, TRIGGER_ON_KILL, conf
from azureml_parallel_r.exceptions import ParallelRunFailedError
from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook
from azureml_parallel_r.triggers.parallel_run import ParallelRunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class ParallelRunSensor(BaseSensorOperator):
    """Wait until a pipeline run is Finished; fail with its failure summary when it is Failed or Canceled.

    The failure summary (the first failed files with their R stderr tails, and the job's error log) goes
    into the task log and the exception. In deferrable mode the waiting happens in the triggerer, holding
    no worker slot; ``timeout`` applies in every mode.

    :param run_id: the pipeline run id (templated; typically the submit task's XCom).
    :param azureml_parallel_r_conn_id: the Airflow connection that selects the engine (templated).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param cancel_on_kill: cancel the pipeline run when this task is killed while waiting, on a worker or (a
        user's action on the deferred task) in the triggerer (Airflow 3.3+; 3.1 and 3.2 do not tell a trigger).
    """

    template_fields: Sequence[str] = ("run_id", "azureml_parallel_r_conn_id")
    ui_color = "#50e6ff"

    def __init__(
        self,
        *,
        run_id: str,
        azureml_parallel_r_conn_id: str = AzureMLParallelRunHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.azureml_parallel_r_conn_id = azureml_parallel_r_conn_id
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill

    @cached_property
    def hook(self) -> AzureMLParallelRunHook:
        return AzureMLParallelRunHook(azureml_parallel_r_conn_id=self.azureml_parallel_r_conn_id)

    def poke(self, context: Context) -> bool:
        state = self.hook.get_conn().get_status(self.run_id)
        if state.status in run_status.UNSUCCESSFUL:
            self._fail(state.message)
        self.log.info("Pipeline run %s is %s %s", self.run_id, state.status, state.counts or "")
        return state.succeeded

    def execute(self, context: Context) -> None:
        if not self.deferrable:
            super().execute(context=context)
            return
        if not self.poke(context):
            if self.cancel_on_kill and not TRIGGER_ON_KILL:
                self.log.warning(
                    "Airflow %s does not tell a deferred task's trigger when a user stops the task (3.3 does): "
                    "marking this task failed or success, or clearing it, leaves pipeline run %s going; cancel it "
                    "where it runs (Azure ML studio)",
                    AIRFLOW_VERSION,
                    self.run_id,
                )
            self.defer(
                trigger=ParallelRunTrigger(
                    self.run_id, self.azureml_parallel_r_conn_id, self.poke_interval, self.cancel_on_kill
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        """Resume after the trigger fired: succeed, or fail with the run's failure summary (the event's, read by the
        trigger; read here only for an event that carries none)."""
        if event.get("status") == "success":
            self.log.info(event["message"])
            return
        if event.get("summary"):
            self.log.error("%s", event["summary"])
            raise ParallelRunFailedError(event["summary"])
        self._fail(event.get("message", ""))

    def on_kill(self) -> None:
        if self.cancel_on_kill:
            self.log.info("Task killed: canceling pipeline run %s", self.run_id)
            self.hook.get_conn().cancel(self.run_id)

    def _fail(self, reason: str) -> None:
        summary = self.hook.get_conn().describe_failure(self.run_id, reason)
        self.log.error("%s", summary)
        raise ParallelRunFailedError(summary)
