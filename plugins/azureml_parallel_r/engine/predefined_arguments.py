"""The parallel runtime's predefined program arguments (v2 parallel jobs), applied by the local engine.

A v2 parallel job sets some of the runtime's own settings as program arguments; the CLI (v2) parallel job YAML
reference lists them ("Predefined arguments for parallel job",
https://learn.microsoft.com/azure/machine-learning/reference-yaml-job-parallel), with their allowed values:

==================================  =============================  ==================================================
argument                            allowed                        what the local engine does
==================================  =============================  ==================================================
``--error_threshold``               [-1, int.max]                  failed items tolerated (``error_threshold``)
``--allowed_failed_percent``        [0, 100]                       failed mini-batch percent tolerated
``--first_task_creation_timeout``   (0, 259200]                    the job fails when no mini-batch has started that
                                                                   long after it began
``--progress_update_timeout``       (0, 259200]                    the job fails when no mini-batch has ended (nor the
                                                                   first started) for that long
``--task_overhead_timeout``         (0, 259200]                    checked, no effect: handing a mini-batch to
                                                                   ``run()`` is a pipe write here
``--resource_monitor_interval``     [0, int.max]                   checked, no effect: ``logs/sys/perf`` is not written
``--copy_logs_to_parent``           True, False                    checked, no effect: a local run has no parent job
``--push_metrics_to_parent``        True, False                    checked, no effect: nor metrics
``--metrics_name_prefix``           any                            no effect
==================================  =============================  ==================================================

They stay in the entry script's arguments (which reads its own with ``parse_known_args``), and they apply when they
are given, over the job's settings: a v1 ParallelRunStep has no such arguments, so the YAML reference's defaults
(600 s before the first task, for one) are not imposed on a local run that does not ask for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from azureml_parallel_r.run_settings import ParallelRunSettings

MAX_TIMEOUT = 259200
INT_MAX = 2**31 - 1
TIMEOUTS = ("--task_overhead_timeout", "--progress_update_timeout", "--first_task_creation_timeout")
BOOLEANS = ("--copy_logs_to_parent", "--push_metrics_to_parent")
PREDEFINED = (
    "--error_threshold",
    "--allowed_failed_percent",
    *TIMEOUTS,
    "--resource_monitor_interval",
    *BOOLEANS,
    "--metrics_name_prefix",
)


@dataclasses.dataclass(frozen=True)
class RuntimeTimeouts:
    """The v2 runtime's job-level timeouts, in seconds (``None``: not asked for).

    :param first_task_creation: from the job's start to its first mini-batch's start.
    :param progress_update: the longest time without a mini-batch ending.
    """

    first_task_creation: float | None = None
    progress_update: float | None = None


def predefined_arguments(argv: Sequence[str]) -> dict[str, str]:
    """The predefined arguments in a program's arguments (``--name value`` or ``--name=value``), the last one winning.

    :param argv: the entry script's arguments.
    """
    found: dict[str, str] = {}
    for i, word in enumerate(argv):
        name, equals, value = word.partition("=")
        if name not in PREDEFINED:
            continue
        if equals:
            found[name] = value
        elif i + 1 < len(argv):
            found[name] = argv[i + 1]
        else:
            raise ValueError(f"the runtime's argument {name} needs a value")
    return found


def _number(name: str, text: str, kind: type, low: float, high: float, *, open_low: bool = False) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {text!r}") from None
    if (value <= low if open_low else value < low) or value > high:
        bound = "(" if open_low else "["
        top = "int.max" if high == INT_MAX else f"{high:g}"  # as the YAML reference writes it
        raise ValueError(f"{name} must be in {bound}{low:g}, {top}], got {text}")
    return value


def apply_predefined_arguments(
    settings: ParallelRunSettings, argv: Sequence[str]
) -> tuple[ParallelRunSettings, RuntimeTimeouts]:
    """The job's settings with the predefined arguments in ``argv`` applied, and the runtime timeouts they ask for.

    :param settings: the job's settings.
    :param argv: the entry script's arguments.
    :raises ValueError: a predefined argument outside its allowed values, saying which.
    """
    given = predefined_arguments(argv)
    changes: dict[str, Any] = {}
    if "--error_threshold" in given:
        changes["error_threshold"] = _number("--error_threshold", given["--error_threshold"], int, -1, INT_MAX)
    if "--allowed_failed_percent" in given:
        text = given["--allowed_failed_percent"]
        changes["allowed_failed_percent"] = _number("--allowed_failed_percent", text, float, 0, 100)
    timeouts = {
        name: _number(name, given[name], float, 0, MAX_TIMEOUT, open_low=True) for name in TIMEOUTS if name in given
    }
    if "--resource_monitor_interval" in given:
        _number("--resource_monitor_interval", given["--resource_monitor_interval"], int, 0, INT_MAX)
    for name in BOOLEANS:
        if name in given and given[name] not in ("True", "False", "true", "false"):
            raise ValueError(f"{name} must be True or False, got {given[name]!r}")
    return dataclasses.replace(settings, **changes), RuntimeTimeouts(
        first_task_creation=timeouts.get("--first_task_creation_timeout"),
        progress_update=timeouts.get("--progress_update_timeout"),
    )
