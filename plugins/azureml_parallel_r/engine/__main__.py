"""Command line of the local ParallelRunStep engine.

    python -m azureml_parallel_r.engine run --input DIR --output DIR --source-dir DIR \\
        --entry-script entry/batch_wrapper.py [ParallelRunConfig flags] -- [entry script arguments]
    python -m azureml_parallel_r.engine start ...        same flags; detaches and prints the run id
    python -m azureml_parallel_r.engine status LOGS_DIR
    python -m azureml_parallel_r.engine cancel LOGS_DIR

``run`` prints progress while the job runs and a one-line summary at the end. Exit status: 0 Finished,
1 Failed, 3 Canceled (Ctrl-C cancels), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys

from azureml_parallel_r import status as run_status
from azureml_parallel_r.compute.records import LOGS_DIR
from azureml_parallel_r.engine.job import JobSpec, new_run_id
from azureml_parallel_r.mltable import is_table
from azureml_parallel_r.run_settings import LOGGING_LEVELS, OUTPUT_ACTIONS, ParallelRunSettings, parse_data_size

DEFAULTS = ParallelRunSettings()
EXIT_CODES: dict[str, int] = {run_status.FINISHED: 0, run_status.FAILED: 1, run_status.CANCELED: 3}


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        help="the input folder: every file below it is one item, or, holding an MLTable file, a table",
    )
    parser.add_argument("--output", required=True, help="the step's output folder (AZUREML_BI_OUTPUT_PATH)")
    parser.add_argument("--source-dir", help="source directory (default: the entry script's folder)")
    parser.add_argument("--entry-script", required=True, help="entry script, relative to --source-dir or absolute")
    parser.add_argument("--logs-dir", help="status and logs (default: OUTPUT/logs)")
    parser.add_argument("--run-id", help="run id (default: a new local_<time>_<hex> id)")
    # unset arguments take the settings type's defaults, declared there once
    parser.add_argument(
        "--mini-batch-size",
        help=f"files per mini-batch (default: {DEFAULTS.mini_batch_size}); for a table, an approximate data size: "
        "1024 (bytes), 100 kb, 10MB, 1GB (default: 1MB)",
    )
    parser.add_argument(
        "--partition-keys",
        help="comma-separated keys whose values make the mini-batches (Store,Brand): columns of a table, or fields "
        "of --partition-format for files; run() gets mini_batch_context and the entry script --partition_keys",
    )
    parser.add_argument(
        "--partition-format",
        help="a file input's path format naming its partition fields, like {user}/{season}/{genres}.wav",
    )
    parser.add_argument("--node-count", type=int, help=f"default: {DEFAULTS.node_count}")
    parser.add_argument("--process-count-per-node", type=int, help="default: the number of cores")
    parser.add_argument(
        "--error-threshold",
        type=int,
        help=f"failed files tolerated; -1 ignores all (default: {DEFAULTS.error_threshold})",
    )
    parser.add_argument("--allowed-failed-count", type=int, help="failed mini-batches tolerated; -1 ignores all")
    parser.add_argument("--allowed-failed-percent", type=float, help="percent of failed mini-batches tolerated")
    parser.add_argument(
        "--run-invocation-timeout",
        type=float,
        help="seconds per run() call (default: mini-batch size x --file-timeout + 60, or 60 without a file timeout); "
        "any value above 0 is accepted, and a --file-timeout that cannot fit inside it is a warning",
    )
    parser.add_argument(
        "--file-timeout",
        type=float,
        help="the entry script's per-file limit in seconds, to derive run_invocation_timeout from or warn when it "
        "cannot fit inside it (pass it to the entry script too)",
    )
    parser.add_argument("--run-max-try", type=int, help=f"default: {DEFAULTS.run_max_try}")
    parser.add_argument("--logging-level", choices=LOGGING_LEVELS, help=f"default: {DEFAULTS.logging_level}")
    parser.add_argument("--output-action", choices=OUTPUT_ACTIONS, help=f"default: {DEFAULTS.output_action}")
    parser.add_argument("--append-row-file-name", help=f"default: {DEFAULTS.append_row_file_name}")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for the workers",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m azureml_parallel_r.engine",
        description="Run a ParallelRunStep entry script over a folder of files on this machine.",
        epilog="Arguments after -- go to the entry script.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_job_arguments(commands.add_parser("run", help="run a job in the foreground"))
    _add_job_arguments(commands.add_parser("start", help="start a job detached and print its run id"))
    for name, text in (("status", "print a run's status"), ("cancel", "cancel a detached run")):
        commands.add_parser(name, help=text).add_argument("logs_dir")
    commands.add_parser("run-spec", help=argparse.SUPPRESS).add_argument("spec")
    return parser


def spec_from_args(args: argparse.Namespace, entry_args: list[str]) -> JobSpec:
    """Build the job from command-line arguments; ``ValueError`` says which one to fix."""
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--env takes NAME=VALUE, got {item!r}")
        env[name] = value
    tabular = is_table(args.input)
    if args.mini_batch_size is not None and tabular:
        parse_data_size(args.mini_batch_size)  # a ValueError says the forms
    elif args.mini_batch_size is not None and not args.mini_batch_size.strip().isdigit():
        raise ValueError(
            f"--mini-batch-size for a file input is a number of files, got {args.mini_batch_size!r} (a data size is "
            f"for a table: a folder with an MLTable file)"
        )
    partition_keys = tuple(key.strip() for key in (args.partition_keys or "").split(",") if key.strip())
    if args.partition_format and (tabular or not partition_keys):
        raise ValueError("--partition-format is for a file input with --partition-keys")
    settings = ParallelRunSettings.from_given(
        mini_batch_size=None if tabular or args.mini_batch_size is None else int(args.mini_batch_size),
        node_count=args.node_count,
        process_count_per_node=args.process_count_per_node,
        error_threshold=args.error_threshold,
        allowed_failed_count=args.allowed_failed_count,
        allowed_failed_percent=args.allowed_failed_percent,
        run_invocation_timeout=args.run_invocation_timeout,
        run_max_try=args.run_max_try,
        output_action=args.output_action,
        append_row_file_name=args.append_row_file_name,
        environment_variables=env,
        logging_level=args.logging_level,
    ).with_changes(file_timeout=args.file_timeout)  # unset: any entry script's, not ours to know
    output = os.path.abspath(args.output)
    entry = args.entry_script
    source_dir = os.path.abspath(args.source_dir or os.path.dirname(os.path.abspath(entry)))
    spec = JobSpec(
        run_id=args.run_id or new_run_id(),
        input_dir=os.path.abspath(args.input),
        output_dir=output,
        entry_script=entry if args.source_dir else os.path.basename(entry),
        source_dir=source_dir,
        logs_dir=os.path.abspath(args.logs_dir or os.path.join(output, LOGS_DIR)),
        entry_args=tuple(entry_args),
        settings=settings,
        partition_keys=partition_keys,
        partition_format=args.partition_format,
        table_mini_batch_size=args.mini_batch_size if tabular else None,
    )
    spec.check()
    for warning in settings.warnings():
        _say(f"warning: {warning}")
    return spec


def _say(line: str) -> None:
    """A progress line on stderr; a detached run's stderr is a log on the output disk, which may be full."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def run_foreground(spec: JobSpec) -> str:
    """Run ``spec`` in this process with progress on stderr; SIGINT/SIGTERM cancel it."""
    from azureml_parallel_r.engine.runtime import ParallelRunJob

    job = ParallelRunJob(spec, on_progress=_say)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: job.request_cancel())
    return job.run()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    entry_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, entry_args = argv[:at], argv[at + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run-spec":
        return EXIT_CODES[run_foreground(JobSpec.load(args.spec))]
    if args.command in ("status", "cancel"):
        from azureml_parallel_r.engine.runs import LocalRun, RunNotFound

        try:
            run = LocalRun.open(args.logs_dir)
        except RunNotFound as exc:
            parser.error(str(exc))
        if args.command == "cancel":
            run.cancel()
        print(json.dumps(run.state().to_json(), indent=1))
        return 0
    try:
        spec = spec_from_args(args, entry_args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "start":
        from azureml_parallel_r.engine.runs import start_run

        run = start_run(spec)
        print(json.dumps({"run_id": run.run_id, "logs_dir": spec.logs_dir}))
        return 0
    spec.save()
    print(f"run {spec.run_id}: {spec.input_dir} -> {spec.output_dir} (logs: {spec.logs_dir})", file=sys.stderr)
    return EXIT_CODES[run_foreground(spec)]


if __name__ == "__main__":
    sys.exit(main())
