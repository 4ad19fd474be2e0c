"""One worker process of the local ParallelRunStep engine: imports the entry script, ``init()`` once, then
``run(mini_batch)`` for every mini-batch the controller sends, and ``shutdown()`` at the end.

Started as ``python -m azureml_parallel_r.engine.entry_host REQUEST_FD RESPONSE_FD``. Messages are JSON lines
on those two pipes, so whatever the entry script prints (its stdout and stderr go to log files) cannot
corrupt them. Standard library only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import traceback
from types import ModuleType
from typing import Any

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def rows_from_result(result: Any) -> list[str]:
    """Turn what ``run()`` returned into append_row lines: one line per element (DataFrame: per row).

    :param result: a list, tuple or pandas DataFrame.
    """
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        return [line for line in result.to_csv(sep=" ", header=False, index=False).splitlines() if line]
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
        import azureml_user.parallel_run  # noqa: F401  (the real runtime's, when present)
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
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"entry script {path} defines no run(mini_batch) function")
    return module


def serve(channel: Channel) -> int:
    """Run the worker protocol until the controller says shutdown or goes away."""
    setup = channel.receive()
    if setup is None:
        return 1
    try:
        module = load_entry_script(setup)
        if callable(getattr(module, "init", None)):
            module.init()
    except BaseException as exc:
        channel.send({"ready": False, "error": _describe(exc)})
        return 1
    channel.send({"ready": True})
    try:
        while (message := channel.receive()) is not None and message.get("cmd") == "run":
            try:
                rows = rows_from_result(module.run(list(message["files"])))
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
