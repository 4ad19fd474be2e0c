"""R's log against real R: each failed file's own output tail, rotation, and one chatty file cut to its end."""

from __future__ import annotations

from pathlib import Path

import pytest

from azureml_parallel_r.compute.r_session import RSession
from tests.compute.session_files import input_file, output_dir

pytestmark = pytest.mark.integration


def test_each_failed_file_gets_its_own_output_tail(write_r_script, tmp_path: Path) -> None:
    script = write_r_script(
        """
        process_file <- function(input_path, output_dir, args) {
          message("output of ", basename(input_path))
          if (grepl("bad", input_path)) stop("no good")
          TRUE
        }
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"))
    items = [(input_file(tmp_path, name, "x"), output_dir(tmp_path, name)) for name in ["one", "bad1", "two", "bad2"]]
    outcomes = list(session.process_many(items, []))
    session.close()
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert outcomes[1].stderr_tail == "output of bad1"
    assert outcomes[3].stderr_tail == "output of bad2"
    assert outcomes[0].value is True


def test_r_logs_are_capped_by_rotation(write_r_script, tmp_path: Path) -> None:
    script = write_r_script('process_file <- function(input_path, output_dir, args) cat(strrep("x", 4000), "\\n")\n')
    log = tmp_path / "r.txt"
    session = RSession(str(script), str(log), max_log_bytes=10_000)
    try:
        items = [(input_file(tmp_path, f"f{i}", "x"), output_dir(tmp_path, f"f{i}")) for i in range(12)]
        assert all(o.ok for o in session.process_many(items, []))
    finally:
        session.close()
    assert log.stat().st_size <= 10_000 + 4100 and (tmp_path / "r.txt.1").stat().st_size <= 10_000 + 4100
    assert session.starts > 1


def test_one_file_printing_too_much_is_cut_in_the_log_and_keeps_its_output_tail(write_r_script, tmp_path) -> None:
    """A file that prints past max_log_bytes is cut to a marker and the end of its output, both while it runs and
    when it ends: one chatty file cannot fill the disk, and its failure still shows what it printed last."""
    script = write_r_script(
        r"""
        process_file <- function(input_path, output_dir, args) {
          action <- readLines(input_path, n = 1L)
          if (action == "flood") {
            writeLines(rep(strrep("x", 99), 30000))
            message("LAST WORDS of the flood")
            stop("flooded")
          }
          if (action == "slow-flood") {  # long enough for the cut to happen while it runs
            writeLines(rep(strrep("y", 99), 10000))
            Sys.sleep(1.5)
            writeLines(rep(strrep("z", 99), 10000))
            message("LAST WORDS of the slow flood")
            stop("slowly flooded")
          }
          message("quiet ", basename(input_path))
          NULL
        }
        """
    )
    log = tmp_path / "r.txt"
    limit = 500_000
    session = RSession(str(script), str(log), max_log_bytes=limit)
    actions = [("a", "quiet"), ("b", "flood"), ("c", "slow-flood"), ("d", "quiet")]
    try:
        outcomes = list(
            session.process_many([(input_file(tmp_path, n, a), output_dir(tmp_path, n)) for n, a in actions], [])
        )
    finally:
        session.close()
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert "LAST WORDS of the flood" in outcomes[1].stderr_tail and "quiet a" not in outcomes[1].stderr_tail
    assert "LAST WORDS of the slow flood" in outcomes[2].stderr_tail
    logs = [path for path in (log, tmp_path / "r.txt.1") if path.exists()]
    assert all(path.stat().st_size <= limit + 70_000 for path in logs), [path.stat().st_size for path in logs]
    text = "".join(path.read_text() for path in logs)
    assert text.count("bytes of one file's R output were cut here") >= 2
    assert "quiet a" in text and "quiet d" in text, "what the other files printed is kept"
