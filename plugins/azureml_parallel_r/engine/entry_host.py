"""One worker process of the local ParallelRunStep engine: imports the entry script, ``init()`` once, then
``run(mini_batch)`` for every mini-batch the controller sends, and ``shutdown()`` at the end.

Started as ``python -m azureml_parallel_r.engine.entry_host REQUEST_FD RESPONSE_FD``. Messages are JSON lines
on those two pipes, so whatever the entry script prints (its stdout and stderr go to log files) cannot
corrupt them. Standard library only, and pandas for a table's mini-batches (DataFrames, as the runtime hands them).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import signal
import sys
import traceback
from types import ModuleType
from typing import Any

from azureml_parallel_r.engine.append_row_settings import DEFAULT_CSV_OPTIONS

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


LOG_FORMAT = "%(asctime)s|%(levelname)s|%(name)s|%(message)s"


class EntryScriptRefused(Exception):
    """The entry script needs what the local engine does not model: retrying cannot help."""


def rows_from_result(result: Any, csv_options: dict[str, Any] | None = None) -> list[str]:
    """Turn what ``run()`` returned into append_row lines: one line per element; a DataFrame: one per row, all of
    them, written with ``DataFrame.to_csv(**csv_options)`` (``parallel_run_step.settings.json``).

    :param result: a list, tuple or pandas DataFrame.
    :param csv_options: ``to_csv`` keyword arguments (default: space-separated, no header, no index).
    """
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        text = result.to_csv(**(csv_options or DEFAULT_CSV_OPTIONS))
        return [line for line in text.splitlines() if line]
    if inspect.isgenerator(result):
        raise TypeError(
            "run() returned a generator; return a list or a pandas DataFrame (a generator run() is not "
            "modelled by the local engine)"
        )
    if not isinstance(result, list | tuple):
        raise TypeError(f"run() must return a list or a pandas DataFrame, got {type(result).__name__}")
    return [(item if isinstance(item, str) else str(item)).replace("\r", " ").replace("\n", " ") for item in result]


class Channel:
    """JSON lines over a pair of pipe file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = os.fdopen(read_fd, "rb")
        self._write_fd = write_fd

    def receive(self) -> dict[str, Any] | None:
        line = self._reader.readline()
        return json.loads(line) if line else None

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=True) + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]


def load_entry_script(setup: dict[str, Any]) -> ModuleType:
    """Import the entry script the way the ParallelRunStep runtime does.

    :param setup: the controller's first message (entry script path, source dir, argv).
    """
    source_dir = setup["source_dir"]
    os.chdir(source_dir)
    sys.path.insert(0, source_dir)
    try:
        importlib.import_module("azureml_user.parallel_run")  # the real runtime's, when present
    except ImportError:
        sys.path.append(SHIM_DIR)
    sys.argv = list(setup["argv"])
    path = setup["entry_script"]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import entry script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    check_run_function(module, path, partitioned=bool(setup.get("partitioned")))
    return module


class MiniBatchContext:
    """What the runtime passes as ``run()``'s second argument with ``partition_keys``: ``partition_key_value``, the
    partition's key values, and ``dataset``, its dataset (None here: a registered dataset exists only on Azure).

    :param partition_key_value: the key values.
    """

    def __init__(self, partition_key_value: dict[str, Any]) -> None:
        self.partition_key_value = dict(partition_key_value)
        self.dataset = None

    def __repr__(self) -> str:
        return f"MiniBatchContext(partition_key_value={self.partition_key_value!r})"


def mini_batch(message: dict[str, Any]) -> Any:
    """What ``run()`` gets for a mini-batch: its files, or its table's DataFrame (read from the file the controller
    wrote it to).

    :param message: the controller's ``run`` message.
    """
    if message.get("table"):
        import pandas  # type: ignore[import-untyped]

        return pandas.read_pickle(message["table"])
    return list(message["files"])


def check_run_function(module: ModuleType, path: str, partitioned: bool = False) -> None:
    """Refuse, saying why, an entry script whose ``run()`` the local engine cannot call as the runtime would: none
    at all, a generator, or ``run(mini_batch, mini_batch_context)`` on a job without ``partition_keys`` (the runtime
    passes the context only with them: "For partition per folder/column jobs, ParallelRunStep pass an optional
    positional parameter mini_batch_context", MachineLearningNotebooks' partition sample).

    :param module: the imported entry script.
    :param path: its path, for the message.
    :param partitioned: the job has partition keys.
    """
    run = getattr(module, "run", None)
    if not callable(run):
        raise EntryScriptRefused(f"entry script {path} defines no run(mini_batch) function")
    if inspect.isgeneratorfunction(run) or inspect.isasyncgenfunction(run):
        raise EntryScriptRefused(
            f"run() in {path} is a generator; the runtime calls run(mini_batch) for a list or a DataFrame: return one"
        )
    try:
        parameters = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > (2 if partitioned else 1):
        raise EntryScriptRefused(
            f"run() in {path} takes {len(required)} arguments ({', '.join(p.name for p in required)}): the runtime "
            "calls run(mini_batch), and run(mini_batch, mini_batch_context) when the job has partition_keys"
            + ("" if partitioned else "; give the job partition keys, or give mini_batch_context a default")
        )
    takes_varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    if partitioned and len(positional) < 2 and not takes_varargs:
        raise EntryScriptRefused(
            f"run() in {path} takes one argument, but a job with partition_keys calls "
            "run(mini_batch, mini_batch_context): add the second parameter"
        )


def log_root_to_stdout() -> None:
    """As the runtime does: a handler on the root logger writing to the process's stdout log, at INFO ("Where does
    the message from Python logging sink to?", Troubleshooting the ParallelRunStep,
    https://learn.microsoft.com/azure/machine-learning/v1/how-to-debug-parallel-run-step)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def serve(channel: Channel) -> int:
    """Run the worker protocol until the controller says shutdown or goes away."""
    setup = channel.receive()
    if setup is None:
        return 1
    csv_options = setup.get("csv_options") or None
    partitioned = bool(setup.get("partitioned"))
    log_root_to_stdout()
    try:
        module = load_entry_script(setup)
        if callable(getattr(module, "init", None)):
            module.init()
    except EntryScriptRefused as exc:
        channel.send({"ready": False, "refused": True, "error": str(exc)})
        return 1
    except BaseException as exc:
        channel.send({"ready": False, "error": _describe(exc)})
        return 1
    channel.send({"ready": True})
    try:
        while (message := channel.receive()) is not None and message.get("cmd") == "run":
            try:
                arguments = [mini_batch(message)]
                if partitioned:
                    arguments.append(MiniBatchContext(message.get("keys") or {}))
                rows = rows_from_result(module.run(*arguments), csv_options)
                channel.send({"ok": True, "rows": rows})
            except Exception as exc:
                channel.send({"ok": False, "error": _describe(exc)})
    finally:
        if callable(getattr(module, "shutdown", None)):
            module.shutdown()
    return 0


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text[-8000:]


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    return serve(Channel(int(argv[0]), int(argv[1])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
