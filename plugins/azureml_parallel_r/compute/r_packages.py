"""The R packages an R script declares it needs, the ways R users declare them (standard library only: this module
is shipped to the compute).

Read from next to the R script, then from a plain list:

- ``renv.lock`` (renv's lockfile, JSON): each entry of ``Packages`` with its exact ``Version``;
- ``DESCRIPTION`` (an R package's metadata, Debian control format): the packages in ``Imports`` and ``Depends``
  (not ``R`` itself), with a ``(>= x)`` minimum or an ``(== x)`` version where given;
- a plain list (the connection's or the operator's ``r_packages``, reaching the entry script as ``--r-package``
  arguments): ``name``, ``name==version`` or ``name>=version``.

When both files are there, both count. The R session checks every declared package, and every package the script
names itself (``library()``, ``require()``, ``pkg::``), before any file runs (compute/session.R).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

DECLARATION_FILES = ("renv.lock", "DESCRIPTION")
# an R package name (Writing R Extensions 1.1.1): letters, digits and periods, starting with a letter, not ending
# in a period; a version is numbers separated by "." or "-"
_NAME = r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]"
_VERSION = r"[0-9]+(?:[.-][0-9]+)*"
_REQUIREMENT = re.compile(rf"\s*({_NAME})\s*(?:(==|>=)\s*({_VERSION}))?\s*")
_DESCRIPTION_ENTRY = re.compile(rf"\s*(R|{_NAME})\s*(?:\(\s*(>=|==)\s*({_VERSION})\s*\))?\s*")


class DeclarationError(ValueError):
    """A declaration that cannot be read; the message names the file (or list entry) and what is wrong."""


@dataclass(frozen=True)
class RPackage:
    """One R package a script needs.

    :param name: the package's name.
    :param version: the exact version asked for (``renv.lock``, ``name==version``), if any.
    :param minimum: the lowest version accepted (``DESCRIPTION``'s ``(>= x)``, ``name>=version``), if any.
    :param source: where it was declared, for messages.
    """

    name: str
    version: str | None = None
    minimum: str | None = None
    source: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def requirement(self) -> str:
        """``name``, ``name==version`` or ``name>=version``: the plain-list form."""
        if self.version:
            return f"{self.name}=={self.version}"
        return f"{self.name}>={self.minimum}" if self.minimum else self.name


def parse_requirement(text: str, source: str = "r_packages") -> RPackage:
    """One entry of a plain list.

    :param text: ``name``, ``name==version`` or ``name>=version``.
    :param source: where the list comes from, for the error and the package's ``source``.
    """
    found = _REQUIREMENT.fullmatch(text)
    if not found:
        raise DeclarationError(
            f"{source}: {text!r} is not an R package requirement; write name, name==version or name>=version"
        )
    name, op, version = found.groups()
    return RPackage(name, version if op == "==" else None, version if op == ">=" else None, source)


def from_renv_lock(path: str) -> list[RPackage]:
    """The packages of an ``renv.lock``, each at its locked version.

    :param path: the lockfile.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            packages = json.load(handle).get("Packages")
    except (OSError, ValueError, AttributeError) as exc:
        raise DeclarationError(f"{path}: not a readable renv lockfile ({exc})") from None
    if not isinstance(packages, dict):
        raise DeclarationError(f"{path}: an renv lockfile has a 'Packages' object; this one has none")
    found = []
    for key, record in sorted(packages.items()):
        record = record if isinstance(record, dict) else {}
        found.append(RPackage(str(record.get("Package") or key), record.get("Version") or None, None, "renv.lock"))
    return found


def _dcf_fields(text: str) -> dict[str, str]:
    """The fields of a Debian-control-format record; continuation lines start with whitespace."""
    fields: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            name = name.strip()
            fields[name] = value.strip()
    return fields


def from_description(path: str) -> list[RPackage]:
    """The packages a ``DESCRIPTION`` imports or depends on (``R`` itself left out), with their minimums.

    :param path: the DESCRIPTION file.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            fields = _dcf_fields(handle.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: not readable ({exc})") from None
    found = []
    for field in ("Depends", "Imports"):
        for entry in filter(str.strip, fields.get(field, "").split(",")):
            parsed = _DESCRIPTION_ENTRY.fullmatch(entry)
            if not parsed:
                raise DeclarationError(
                    f"{path}: {field} entry {entry.strip()!r} is not 'name', 'name (>= version)' or 'name (== version)'"
                )
            name, op, version = parsed.groups()
            if name != "R":
                found.append(
                    RPackage(name, version if op == "==" else None, version if op == ">=" else None, "DESCRIPTION")
                )
    return found


def declaration_files(r_script: str) -> list[str]:
    """The declaration files next to the R script (``renv.lock``, ``DESCRIPTION``) that exist.

    :param r_script: the R script's path.
    """
    folder = os.path.dirname(os.path.abspath(r_script))
    return [os.path.join(folder, name) for name in DECLARATION_FILES if os.path.isfile(os.path.join(folder, name))]


def declared_packages(r_script: str, listed: Iterable[str] = ()) -> list[RPackage]:
    """Every package declared for the R script: its ``renv.lock`` and ``DESCRIPTION``, then the plain list. A package
    declared twice keeps its first declaration.

    :param r_script: the R script's path.
    :param listed: the plain list (``--r-package`` arguments).
    """
    found: list[RPackage] = []
    for path in declaration_files(r_script):
        found += from_renv_lock(path) if path.endswith("renv.lock") else from_description(path)
    found += [parse_requirement(text) for text in listed]
    unique: dict[str, RPackage] = {}
    for package in found:
        unique.setdefault(package.name, package)
    return list(unique.values())
