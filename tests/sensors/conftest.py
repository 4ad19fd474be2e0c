"""A fake backend at the interface boundary, and a minimal task context (tests/task_fixtures.py)."""

from tests.task_fixtures import backend, context

__all__ = ["backend", "context"]
