"""Repair runs: a run that reruns the failed files of an earlier run, which may itself be a repair.

A chain of repairs (run A fails files; repair B of A fixes some; repair C of B fixes the rest) completes the date of
its first run: every repair records the whole chain before it, the first (root) run first, and the root run's date, so
that its validation publishes that date and every output folder of the chain, however long the chain. Standard
library only.
"""

from __future__ import annotations

from typing import Any

# a DAG run in one of these states may still submit, run or validate what a repair of it would register
UNFINISHED_DAG_RUN_STATES = frozenset({"queued", "running"})


def repair_of(repaired: str, record: dict[str, Any], failed_files: int) -> dict[str, Any]:
    """What a repair run's dataset records of the run it repairs (``rerun_of``): that DAG run and its pipeline run, the
    number of files it left failed, and the whole repair chain it belongs to, so that a repair of a repair still
    completes the date the first run processed: ``chain`` lists every run of the chain, the first (root) run first,
    ending with the repaired one, and ``date`` is the root run's date (never a repair's own trigger date).

    :param repaired: the repaired DAG run's id.
    :param record: its submit task's record (``run_record``); a repair's holds its own ``rerun_of``.
    :param failed_files: how many of its files failed or have no results.
    """
    link = {"dag_run_id": repaired, "run_id": record["run_id"], "output_path": record["output_path"]}
    earlier = record.get("rerun_of") or None  # the repaired run is itself a repair: continue its chain
    date = (earlier or {}).get("date") or record.get("date")
    return {**link, "date": date, "failed_files": failed_files, "chain": [*repair_chain(earlier), link]}


def repair_chain(rerun_of: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The runs a repair run's chain holds before it, the first (root) run first (``rerun_of["chain"]``; one link for a
    dataset recorded before chains were).

    :param rerun_of: the repair run's dataset's ``rerun_of``, or None for a run that repairs nothing.
    """
    if not rerun_of:
        return []
    return list(
        rerun_of.get("chain")
        or [
            {
                "dag_run_id": rerun_of.get("dag_run_id"),
                "run_id": rerun_of.get("run_id"),
                "output_path": rerun_of.get("output_path"),
            }
        ]
    )


def chain_output_paths(rerun_of: dict[str, Any] | None) -> list[str]:
    """The output folders of a repair run's chain before it, the first run's first.

    :param rerun_of: the repair run's dataset's ``rerun_of``, or None.
    """
    return [str(link["output_path"]) for link in repair_chain(rerun_of) if link.get("output_path")]
