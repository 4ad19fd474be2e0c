"""The asset the r_parallel_batch DAG updates when a date's outputs are validated, for downstream DAGs to be scheduled
on (one event per date, partitioned by it: see
:class:`~azureml_parallel_r.operators.validation.ValidateParallelRunOutputsOperator`)."""

from __future__ import annotations

from airflow.sdk import Asset

R_PARALLEL_BATCH_OUTPUTS = Asset(name="r_parallel_batch_outputs", uri="azureml-parallel-r://r-script-outputs")
