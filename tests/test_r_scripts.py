"""Which R scripts a run may use: under the source directory or an allowed folder, present, parsing; errors
never echo the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from azureml_parallel_r.r_scripts import RScriptError, check_parses, parse_error_summary, resolve_r_script
from tests.conftest import INCLUDE


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    folder.mkdir()
    (folder / "ok.r").write_text("process_file <- function(input_path, output_dir, args) NULL\n")
    return folder


def test_relative_scripts_resolve_under_the_source_directory_and_allowed_folders_take_absolute_ones(allowed) -> None:
    assert resolve_r_script("r/process_file.r", str(INCLUDE)) == str((INCLUDE / "r" / "process_file.r").resolve())
    assert resolve_r_script(str(allowed / "ok.r"), str(INCLUDE), [str(allowed)]) == str(allowed / "ok.r")


@pytest.mark.parametrize(
    "r_script",
    ["/etc/passwd", "../../../../etc/passwd", "r/../../pyproject.toml", "/proc/self/environ"],
)
def test_anything_outside_the_allowed_folders_is_refused(allowed: Path, r_script: str) -> None:
    with pytest.raises(RScriptError, match="is not under a folder R scripts may come from"):
        resolve_r_script(r_script, str(INCLUDE), [str(allowed)])


def test_a_link_out_of_an_allowed_folder_is_refused(allowed: Path) -> None:
    (allowed / "sneaky.r").symlink_to("/etc/passwd")
    with pytest.raises(RScriptError, match="is not under a folder R scripts may come from"):
        resolve_r_script(str(allowed / "sneaky.r"), str(INCLUDE), [str(allowed)])


def test_a_missing_script_is_named(allowed: Path) -> None:
    with pytest.raises(RScriptError, match=r"'r/nope\.r' does not exist"):
        resolve_r_script("r/nope.r", str(INCLUDE), [str(allowed)])


@pytest.mark.integration
def test_a_script_that_does_not_parse_is_reported_without_its_text(allowed: Path) -> None:
    bad = allowed / "bad.r"
    bad.write_text("process_file <- function(a, b, c) {\n  token_S3CRET value\n}\n")
    with pytest.raises(RScriptError) as error:
        check_parses(str(bad))
    assert "'bad.r' does not parse: line 2, column 16: unexpected symbol" in str(error.value)
    assert "S3CRET" not in str(error.value)
    assert check_parses(str(allowed / "ok.r")) is True


def test_an_unrecognised_r_message_is_not_passed_on() -> None:
    assert "S3CRET" not in parse_error_summary("Error: something about S3CRET\n1: S3CRET\n")
