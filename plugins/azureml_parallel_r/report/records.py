"""What the submit task records for the run report (an XCom), read back by the report; standard library only, so the
operators import it without the report's web stack.

The record holds what the report shows and nothing secret: not the run's environment variables, not the
connection's fields (only its id, which the report uses to reach the engine's storage as the tasks do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azureml_parallel_r.models import RunRef, RunRequest

RUN_RECORD_KEY = "run_record"  # the submit task's XCom for the report
RERUN_FAILED_OF = "rerun_failed_of"  # the conf key of a repair run: the DAG run whose failed files it reruns


def run_record(request: RunRequest, ref: RunRef, conn_id: str, date: str) -> dict[str, Any]:
    """The report's record of a submitted run.

    :param request: what was submitted (a repair run's dataset names the run it repairs: ``rerun_of``).
    :param ref: the run it became.
    :param conn_id: the Airflow connection that selects the engine.
    :param date: the DAG run's date (``run_date``): a repair's outputs belong to the date it repairs.
    """
    settings = request.settings
    return {
        "run_id": ref.run_id,
        "url": ref.url,
        "output_path": ref.output_path,
        "engine": ref.engine,
        "conn_id": conn_id,
        "date": date,
        "dataset": request.dataset.to_dict(),
        "r_script": request.r_script,
        "r_args": list(request.r_args),
        "r_packages": list(request.r_packages),
        "r_mode": request.r_mode,
        "node_count": settings.node_count,
        "process_count_per_node": settings.process_count_per_node,
        "mini_batch_size": settings.mini_batch_size,
        "error_threshold": settings.error_threshold,
        "rerun_of": request.dataset.rerun_of,
    }
