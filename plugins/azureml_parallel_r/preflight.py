"""Before the first run: everything the connection's workspace still lacks, one line per check, each failing one
saying what to do. The connection's Test button (``airflow connections test <conn id>``) runs it, and so does:

    python -m azureml_parallel_r.preflight [CONN_ID] [--r-script PATH] [--r-package REQ ...]

(exit status 0 when every check passes, 1 otherwise). On an Azure ML connection (both SDKs) it checks:

1. ``workspace``: the workspace answers with the connection's identity;
2. ``datastore``: the datastore exists, and its kind (account key, SAS token, ADLS Gen2 service principal,
   identity-based) and who reads it;
3. ``storage``: that identity can list the inputs' folder and write (and delete) a file in the outputs' one;
4. ``compute``: the cluster exists, its VM size, node counts and managed identity; one without a managed identity
   fails when the job would need it (an identity-based datastore read by the compute's identity);
5. ``environment``: the registered environment the connection names exists, or the image will be built;
6. ``R script``: the script is allowed, exists and parses, its declarations read, and every package it loads is
   declared (``renv.lock``, ``DESCRIPTION``, ``r_packages``) or in the compute image.

On the local engine: the datastore folder, this machine's R (and whether it is the image's), and the R script.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azureml_parallel_r.compute.entry_settings import DEFAULT_R_SCRIPT

if TYPE_CHECKING:
    from azureml_parallel_r.backends.base import ParallelRunBackend


DETAIL_CHARS = 600


@dataclass(frozen=True)
class Check:
    """One preflight check.

    :param name: what was checked.
    :param ok: whether it passed.
    :param detail: what was found, or why it failed.
    :param fix: what to do when it failed.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The check as one line: ``ok``/``FAIL``, its name, what was found (an SDK's message of many lines folded
        into one, at most :data:`DETAIL_CHARS` characters), and what to do."""
        detail = " ".join(self.detail.split())
        if len(detail) > DETAIL_CHARS:
            detail = detail[: DETAIL_CHARS - 3] + "..."
        said = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {detail}"
        return said if self.ok or not self.fix else f"{said} -> {self.fix}"


class CheckFailed(Exception):
    """A probe's own verdict that its check fails (not an error): its message is the detail, ``fix`` what to do."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.fix = fix


def probe(name: str, fix: str, run: Callable[[], str]) -> Check:
    """Run one check: what ``run`` returns is the finding; what it raises is the failure (with ``fix``, or the
    :class:`CheckFailed`'s own).

    :param name: the check's name.
    :param fix: what to do when it fails.
    :param run: the probe.
    """
    from azureml_parallel_r.models import error_text

    try:
        return Check(name, True, run())
    except CheckFailed as failed:
        return Check(name, False, str(failed), failed.fix or fix)
    except Exception as exc:
        return Check(name, False, error_text(exc), fix)


def r_script_check(backend: ParallelRunBackend, r_script: str, r_packages: Sequence[str] = ()) -> Check:
    """The R script is allowed, exists, parses and its declarations read; every package it loads is declared or in
    the compute image (:data:`~azureml_parallel_r.backends.azure.environment.IMAGE_R_PACKAGES`).

    :param backend: the engine (its source directory and allowed folders).
    :param r_script: the script, as a run names it.
    :param r_packages: the run's plain list of packages.
    """

    def run() -> str:
        from azureml_parallel_r.backends.azure.environment import IMAGE_R_PACKAGES
        from azureml_parallel_r.r_scripts import declared_packages, used_packages

        path = backend.check_r_script(r_script, r_packages)
        declared = {package.name for package in declared_packages(path, r_packages)}
        used = used_packages(path)
        missing = [name for name in used if name not in declared and name not in IMAGE_R_PACKAGES]
        if missing:
            raise CheckFailed(
                f"{r_script} loads {', '.join(missing)}, declared nowhere and not in the compute image",
                "declare them in an renv.lock or DESCRIPTION next to the script, or in the connection's or the "
                "operator's r_packages (the image then installs them)",
            )
        return f"{r_script} parses; it loads {', '.join(used) or 'no package'}; {len(declared)} declared"

    return probe("R script", "fix the script or its r_script setting", run)


def run_preflight(
    backend: ParallelRunBackend, r_script: str = DEFAULT_R_SCRIPT, r_packages: Sequence[str] = ()
) -> list[Check]:
    """Every check of the engine (:meth:`~azureml_parallel_r.backends.base.ParallelRunBackend.preflight_checks`), then
    the R script's.

    :param backend: the connection's engine.
    :param r_script: the R script runs will use.
    :param r_packages: the plain list of packages runs will declare.
    """
    return [*backend.preflight_checks(), r_script_check(backend, r_script, r_packages)]


def main(argv: Sequence[str] | None = None) -> int:
    from azureml_parallel_r.hooks.parallel_run import AzureMLParallelRunHook

    parser = argparse.ArgumentParser(
        prog="python -m azureml_parallel_r.preflight",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "conn_id",
        nargs="?",
        default=AzureMLParallelRunHook.default_conn_name,
        help="the Airflow connection (default: %(default)s)",
    )
    parser.add_argument("--r-script", default=DEFAULT_R_SCRIPT, help="the R script runs will use")
    parser.add_argument("--r-package", action="append", default=[], help="name, name==version or name>=version")
    args = parser.parse_args(argv)
    try:
        backend = AzureMLParallelRunHook(azureml_parallel_r_conn_id=args.conn_id).get_conn()
    except Exception as exc:
        from azureml_parallel_r.models import error_text

        print(Check("connection", False, error_text(exc)).line())
        return 1
    checks = run_preflight(backend, args.r_script, args.r_package)
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
