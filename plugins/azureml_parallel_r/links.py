"""Operator extra link: the pipeline run in Azure ML studio (or the local run's logs folder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class PipelineRunLink(BaseOperatorLink):
    """ "Pipeline run" button on the submit task: the ``run_url`` it pushed (the studio portal URL)."""

    name = "Pipeline run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key="run_url") or ""
