"""Pipeline run statuses shared by both engines (the Azure ML ``PipelineRun`` status strings)."""

from __future__ import annotations

NOT_STARTED = "NotStarted"
RUNNING = "Running"
FINISHED = "Finished"
FAILED = "Failed"
CANCELED = "Canceled"

ALL = frozenset({NOT_STARTED, RUNNING, FINISHED, FAILED, CANCELED})
TERMINAL = frozenset({FINISHED, FAILED, CANCELED})
UNSUCCESSFUL = frozenset({FAILED, CANCELED})
