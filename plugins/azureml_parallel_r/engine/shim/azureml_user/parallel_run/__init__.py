"""Stand-in for ``azureml_user.parallel_run`` so entry scripts written for Azure ML run on the local engine.

The local engine sets the ``AZUREML_PARALLEL_R_*`` variables for each worker process; the attributes follow
``EntryScript`` as Microsoft's troubleshooting page uses it (Troubleshooting the ParallelRunStep,
https://learn.microsoft.com/azure/machine-learning/v1/how-to-debug-parallel-run-step): ``logger`` (to
``logs/user/entry_script_log/<node_id>/<process_name>.log.txt``), ``log_dir`` (that folder), ``agent_name`` ("The
process name in pattern processNNN"), ``output_dir`` and ``working_dir``. It is one object per process, as the page's
"This class is in singleton pattern" has it.
"""

from __future__ import annotations

import logging
import os


class EntryScript:
    """What the ParallelRunStep runtime tells an entry script about its process."""

    _instance: EntryScript | None = None

    def __new__(cls) -> EntryScript:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    @property
    def agent_name(self) -> str:
        """The process name, ``processNNN`` (unique on its node; a replaced process gets the next number)."""
        return os.environ.get("AZUREML_PARALLEL_R_AGENT_NAME", f"process{os.getpid()}")

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
        process = self.agent_name
        logger = logging.getLogger(f"azureml_user.entry_script.{process}")
        if not logger.handlers:
            handler = logging.FileHandler(os.path.join(self.log_dir, f"{process}.log.txt"), encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        return logger
