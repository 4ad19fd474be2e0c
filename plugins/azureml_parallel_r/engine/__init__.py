"""The local ParallelRunStep engine: runs any ParallelRunStep entry script on one machine with the Azure
ML runtime rules (mini-batches, init/run/shutdown, timeouts, retries, thresholds, append_row, log layout).

No Airflow import here. Command line: ``python -m azureml_parallel_r.engine --help``. Python API:
:func:`azureml_parallel_r.engine.runs.start_run`, :class:`~azureml_parallel_r.engine.runs.LocalRun`,
:class:`~azureml_parallel_r.engine.runtime.ParallelRunJob`.
"""
