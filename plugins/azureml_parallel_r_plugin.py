"""Registers the azureml-parallel-r operator extra link with Airflow."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from azureml_parallel_r.links import PipelineRunLink


class AzureMLParallelRPlugin(AirflowPlugin):
    """The "Pipeline run" link on SubmitParallelRunOperator tasks."""

    name = "azureml_parallel_r"
    operator_extra_links = [PipelineRunLink()]
