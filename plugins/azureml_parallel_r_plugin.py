"""Registers the azureml-parallel-r plugin (extra links, run report) from Airflow's plugins folder when the package
is not installed: an installed package registers it through its ``airflow.plugins`` entry point, and registering it
twice would be reported as a plugin import error."""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(point.value.startswith("azureml_parallel_r.") for point in entry_points(group="airflow.plugins")):
    from azureml_parallel_r.plugin import AzureMLParallelRPlugin  # noqa: F401  (found by Airflow's plugin scan)
