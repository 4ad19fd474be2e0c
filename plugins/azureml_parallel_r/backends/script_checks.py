"""The R-script checks every engine makes before it submits: where a run's R script may come from, that it parses,
and the R packages it declares. An engine whose R is this machine's (the local engine) also checks that they load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScriptChecks:
    """An engine's R-script checks.

    :param source_directory: the step's source directory: a relative ``r_script`` is found there.
    :param r_script_dirs: the folders besides it that R scripts may come from.
    :param check_loads: whether the declared packages must load with this machine's R (its R is the run's).
    """

    source_directory: str
    r_script_dirs: tuple[str, ...] = ()
    check_loads: bool = False

    def path(self, r_script: str) -> str:
        """The script's path, refused (``RScriptError``, saying what to fix) when it is not under an allowed folder.

        :param r_script: the run's ``r_script`` (relative to the source directory, or absolute).
        """
        from azureml_parallel_r.r_scripts import resolve_r_script

        return resolve_r_script(r_script, self.source_directory, self.r_script_dirs)

    def check(self, r_script: str, r_packages: Sequence[str] = ()) -> str:
        """The script resolves (:meth:`path`), exists, parses where R is installed, and its package declarations read
        (and, with ``check_loads``, load). Returns its path; raises ``RScriptError`` saying what to fix.

        :param r_script: the run's ``r_script``.
        :param r_packages: the run's plain list of R packages.
        """
        from azureml_parallel_r.r_scripts import check_packages, check_parses, declared_packages

        path = self.path(r_script)
        check_parses(path)
        if self.check_loads:
            check_packages(path, r_packages)
        else:
            declared_packages(path, r_packages)
        return path

    def declared(self, r_script: str, r_packages: Sequence[str]) -> list[dict[str, Any]]:
        """The R packages declared for the script (next to it, and ``r_packages``), as plain dicts: what the Azure
        engines build into the compute image.

        :param r_script: the run's ``r_script``.
        :param r_packages: the run's plain list of R packages.
        """
        from azureml_parallel_r.r_scripts import declared_packages

        return [package.to_dict() for package in declared_packages(self.path(r_script), r_packages)]
