"""The local engine runs with the one settings type of a run (:mod:`azureml_parallel_r.run_settings`)."""

from azureml_parallel_r.run_settings import DEFAULT_APPEND_ROW_FILE_NAME, OUTPUT_ACTIONS, ParallelRunSettings

__all__ = ["DEFAULT_APPEND_ROW_FILE_NAME", "OUTPUT_ACTIONS", "ParallelRunSettings"]
