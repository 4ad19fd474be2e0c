"""Stand-in for ``azureml_user.parallel_run`` so entry scripts written for Azure ML run on the local engine.

The local engine sets the ``AZUREML_PARALLEL_R_*`` variables for each worker process; the attributes
follow the public ``EntryScript``: ``logger``, ``output_dir``, ``log_dir``, ``working_dir`` (it has no agent name:
an entry script that needs one per process builds it from the host name and pid).
"""

from __future__ import annotations

import logging
import os


class EntryScript:
    """What the ParallelRunStep runtime tells an entry script about its process."""

    @property
    def output_dir(self) -> str:
        return os.environ.get("AZUREML_BI_OUTPUT_PATH", os.getcwd())

    @property
    def log_dir(self) -> str:
        path = os.environ.get("AZUREML_PARALLEL_R_LOG_DIR", os.path.join(os.getcwd(), "logs"))
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def working_dir(self) -> str:
        path = os.environ.get("AZUREML_PARALLEL_R_WORKING_DIR", os.getcwd())
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def logger(self) -> logging.Logger:
        """A logger writing to ``<log_dir>/<process>.log.txt``, like the runtime's entry-script log."""
        process = os.environ.get("AZUREML_PARALLEL_R_AGENT_NAME", f"process{os.getpid()}")
        logger = logging.getLogger(f"azureml_user.entry_script.{process}")
        if not logger.handlers:
            handler = logging.FileHandler(os.path.join(self.log_dir, f"{process}.log.txt"), encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        return logger
