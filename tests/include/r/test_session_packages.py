"""The R session checks the script's packages before any file: the declared ones and the ones the script names
(library, require, requireNamespace, loadNamespace, pkg::), found in its code without running it."""

from __future__ import annotations

import pytest

from azureml_parallel_r.compute.r_session import RSession, RSetupError

pytestmark = pytest.mark.integration

NAMES_PACKAGES = """
library(jsonlite)
library(notinstalled.a)
suppressWarnings(require("notinstalled.b"))
pkg <- "notinstalled.hidden"
library(pkg, character.only = TRUE)
process_file <- function(input_path, output_dir, args) {
  if (!requireNamespace("notinstalled.c", quietly = TRUE)) stop("no c")
  helper <- function(x) notinstalled.d::f(x) + notinstalled.e:::g(x) + tools::file_ext(x)
  loadNamespace("notinstalled.f")
  NULL
}
"""


def test_every_missing_package_is_named_in_one_message_before_the_script_runs(write_r_script, tmp_path) -> None:
    script = write_r_script(NAMES_PACKAGES, "names.r")
    declared = [
        {"name": "png", "version": None, "minimum": "99.0", "source": "DESCRIPTION"},
        {"name": "notinstalled.g", "version": "1.0", "minimum": None, "source": "renv.lock"},
    ]
    session = RSession(str(script), str(tmp_path / "r.log"), packages=declared)
    with pytest.raises(RSetupError) as refused:
        session.start()
    message = str(refused.value)
    for expected in (
        "png >= 99.0 (DESCRIPTION: ",
        "notinstalled.g == 1.0 (renv.lock: not installed)",
        *(f"notinstalled.{x} (named by the script, not declared: not installed)" for x in "abcdef"),
    ):
        assert expected in message, message
    # a variable's package (character.only) cannot be known without running the script; base ones always load
    assert "hidden" not in message and "tools (" not in message and "jsonlite (" not in message


def test_installed_packages_named_or_declared_let_the_script_run(write_r_script, tmp_path) -> None:
    script = write_r_script("library(png)\nprocess_file <- function(input_path, output_dir, args) jsonlite::toJSON(1)")
    jpeg = {"name": "jpeg", "version": None, "minimum": "0.1", "source": "r_packages"}
    session = RSession(str(script), str(tmp_path / "r.log"), packages=[jpeg])
    session.start()
    session.close()
