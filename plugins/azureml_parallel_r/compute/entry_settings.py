"""The entry script's own defaults and its stop-before-the-deadline margin, defined once: the entry script parses its
arguments with them (:mod:`azureml_parallel_r.compute.entry_config`) and the Airflow side's settings
(:mod:`azureml_parallel_r.run_settings`) read them from here. Standard library only, and nothing else imported: the
DAG's operators import it at parse time.
"""

from __future__ import annotations

DEFAULT_R_SCRIPT = "r/process_file.r"  # the example R script, relative to the source directory
R_MODES = ("worker", "per-file")  # one persistent R session per worker process (the default), or one R per file
DEFAULT_FILE_TIMEOUT = 300.0  # seconds one file may take before R is killed and the file fails


def invocation_margin(timeout: float) -> float:
    """How long before ``run_invocation_timeout`` a mini-batch stops taking files: a tenth of it, at least 1 s and
    at most 10 s (time to stop R and return the rows before the runtime kills the process).

    :param timeout: the runtime's ``run_invocation_timeout`` in seconds.
    """
    return min(10.0, max(1.0, 0.1 * timeout))
