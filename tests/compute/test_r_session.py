"""The persistent R session client against real R: success, R errors, crashes, timeouts, set-up errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from azureml_parallel_r.compute.r_session import SESSION_R, RSession, RSetupError
from tests.compute.session_files import input_file, output_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def session(behaviour_script: Path, tmp_path: Path):
    w = RSession(str(behaviour_script), str(tmp_path / "logs" / "r.txt"), file_timeout=3)
    w.start()
    yield w
    w.close()


def test_processes_files_in_one_r_process_and_returns_the_r_value(session: RSession, tmp_path: Path) -> None:
    first = session.process(input_file(tmp_path, "a", "fine"), output_dir(tmp_path, "a"), ["--x", "1"])
    second = session.process(input_file(tmp_path, "b", "fine"), output_dir(tmp_path, "b"), [])
    assert first.ok and second.ok
    assert first.value["action"] == "fine"
    assert first.value["args"] == ["--x", "1"]
    assert first.value["pid"] == second.value["pid"], "R must start once, not per file"
    assert session.starts == 1
    assert (tmp_path / "out" / "a" / "echo.txt").read_text().split() == ["fine", "--x", "1"]


def test_user_output_that_looks_like_protocol_does_not_corrupt_the_channel(session: RSession, tmp_path: Path) -> None:
    outcome = session.process(input_file(tmp_path, "a", "fine"), output_dir(tmp_path, "a"), [])
    assert outcome.ok and outcome.value["action"] == "fine"
    log = (tmp_path / "logs" / "r.txt").read_text()
    assert "fake protocol line on stdout" in log and "fake protocol line on stderr" in log


def test_r_error_fails_the_file_and_the_worker_goes_on(session: RSession, tmp_path: Path) -> None:
    failed = session.process(input_file(tmp_path, "bad", "error"), output_dir(tmp_path, "bad"), [])
    assert not failed.ok and failed.kind == "r_error"
    assert failed.error == "deliberate R error for bad"
    assert "fake protocol line on stderr" in failed.stderr_tail
    after = session.process(input_file(tmp_path, "good", "fine"), output_dir(tmp_path, "good"), [])
    assert after.ok and session.starts == 2, "R is restarted after a failed file: it may have left R broken"


def test_a_file_that_exhausts_r_fails_alone_and_the_files_after_it_get_a_fresh_r(write_r_script, tmp_path) -> None:
    """A failure can leave R unusable (here: a global state a real out-of-memory error would leave behind)."""
    script = write_r_script(
        """
        broken <- FALSE
        process_file <- function(input_path, output_dir, args) {
          if (broken) stop("R is unusable after the earlier failure")
          if (readLines(input_path, n = 1L) == "exhaust") {
            broken <<- TRUE
            stop("cannot allocate vector of size 64 Gb")
          }
          Sys.getpid()
        }
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"))
    try:
        items = [
            (input_file(tmp_path, name, action), output_dir(tmp_path, name))
            for name, action in [("a", "ok"), ("big", "exhaust"), ("b", "ok"), ("c", "ok")]
        ]
        outcomes = list(session.process_many(items, []))
    finally:
        session.close()
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert "cannot allocate" in outcomes[1].error and outcomes[0].value != outcomes[2].value == outcomes[3].value
    assert session.starts == 2


def test_r_is_restarted_after_every_n_files_when_asked(behaviour_script: Path, tmp_path: Path) -> None:
    session = RSession(str(behaviour_script), str(tmp_path / "r.txt"), restart_every=2)
    try:
        items = [(input_file(tmp_path, f"f{i}", "fine"), output_dir(tmp_path, f"f{i}")) for i in range(5)]
        pids = [o.value["pid"] for o in session.process_many(items, [])]
    finally:
        session.close()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] and session.starts == 3


@pytest.mark.parametrize(
    ("action", "message"),
    [("crash", "killed by signal SIGSEGV"), ("quit", "R exited with status 7")],
)
def test_crash_fails_one_file_and_r_is_restarted(session: RSession, tmp_path: Path, action: str, message: str) -> None:
    failed = session.process(input_file(tmp_path, action, action), output_dir(tmp_path, action), [])
    assert not failed.ok and failed.kind == "crash"
    assert message in failed.error
    after = session.process(input_file(tmp_path, "good", "fine"), output_dir(tmp_path, "good"), [])
    assert after.ok and session.starts == 2


def test_hung_file_times_out_and_r_is_killed(session: RSession, tmp_path: Path) -> None:
    hung = session.process(input_file(tmp_path, "hang", "hang"), output_dir(tmp_path, "hang"), [])
    assert not hung.ok and hung.kind == "timeout"
    assert "timed out after 3 s" in hung.error
    assert hung.seconds >= 3, "killed by the file timeout, not before it"
    after = session.process(input_file(tmp_path, "good", "fine"), output_dir(tmp_path, "good"), [])
    assert after.ok and session.starts == 2


def test_warnings_are_reported_with_the_result(session: RSession, tmp_path: Path) -> None:
    outcome = session.process(input_file(tmp_path, "w", "warn"), output_dir(tmp_path, "w"), [])
    assert outcome.ok and outcome.warnings == ["a warning for w"]


def test_any_file_name_reaches_r_unchanged(session: RSession, tmp_path: Path) -> None:
    for name in ["-dash", 'sp ace\'s "q"', "$(touch pwned)", "ünï cødé ✓.txt", "new\nline"]:
        outcome = session.process(input_file(tmp_path, name, "fine"), output_dir(tmp_path, name.replace("\n", "_")), [])
        assert outcome.ok, (name, outcome.error)
    assert not (Path.cwd() / "pwned").exists()


def test_syntax_error_fails_at_start_with_r_message(write_r_script, tmp_path: Path) -> None:
    script = write_r_script("process_file <- function(input_path, output_dir, args) {\n  x <- (1 + \n")
    session = RSession(str(script), str(tmp_path / "r.txt"))
    with pytest.raises(RSetupError, match="does not parse"):
        session.start()
    assert not session.alive


def test_script_without_process_file_or_process_partition_fails_at_start(write_r_script, tmp_path: Path) -> None:
    script = write_r_script("helper <- function(x) x\n")
    with pytest.raises(
        RSetupError,
        match=r"defines neither process_file\(input_path, output_dir, args\) .* nor "
        r"process_partition\(data, keys, output_dir, args\)",
    ):
        RSession(str(script), str(tmp_path / "r.txt")).start()


@pytest.mark.parametrize(
    ("code", "functions"),
    [
        ("process_file <- function(input_path, output_dir, args) 1\n", ("process_file",)),
        ("process_partition <- function(data, keys, output_dir, args) 1\n", ("process_partition",)),
        (
            "process_file <- function(input_path, output_dir, args) 1\n"
            "process_partition <- function(data, keys, output_dir, args) 1\n",
            ("process_file", "process_partition"),
        ),
    ],
)
def test_the_session_says_which_functions_the_script_defines(write_r_script, tmp_path, code, functions) -> None:
    session = RSession(str(write_r_script(code)), str(tmp_path / "r.txt"))
    session.start()
    try:
        assert session.functions == functions
    finally:
        session.close()


def test_a_file_for_a_script_with_only_process_partition_fails_saying_so(write_r_script, tmp_path: Path) -> None:
    script = write_r_script("process_partition <- function(data, keys, output_dir, args) 1\n")
    session = RSession(str(script), str(tmp_path / "r.txt"))
    session.start()
    try:
        outcome = session.process(input_file(tmp_path, "a", "fine"), output_dir(tmp_path, "a"), [])
    finally:
        session.close()
    assert not outcome.ok and "defines no process_file(input_path, output_dir, args), which a file input needs" in (
        outcome.error or ""
    )


def test_script_that_errors_while_sourcing_fails_at_start(write_r_script, tmp_path: Path) -> None:
    script = write_r_script('stop("broken while sourcing")\n')
    with pytest.raises(RSetupError, match="sourcing the R script failed"):
        RSession(str(script), str(tmp_path / "r.txt")).start()


def test_missing_rscript_says_how_to_install_r(behaviour_script: Path, tmp_path: Path) -> None:
    session = RSession(str(behaviour_script), str(tmp_path / "r.txt"), rscript="Rscript-not-installed")
    with pytest.raises(RSetupError, match=r"Rscript not found .* apt-get install r-base-core"):
        session.start()


def test_close_leaves_no_r_process(behaviour_script: Path, tmp_path: Path) -> None:
    session = RSession(str(behaviour_script), str(tmp_path / "r.txt"))
    session.start()
    pid = session.pid
    session.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_batch_streams_through_one_request_and_survives_crash_and_hang(session: RSession, tmp_path: Path) -> None:
    actions = ["fine", "crash", "fine", "hang", "fine", "error", "fine"]
    items = [(input_file(tmp_path, f"{i}", a), output_dir(tmp_path, f"{i}")) for i, a in enumerate(actions)]
    outcomes = list(session.process_many(items, ["--k"]))
    assert [o.kind for o in outcomes] == ["ok", "crash", "ok", "timeout", "ok", "r_error", "ok"]
    assert session.starts == 4, "R restarts after the crash, the hang and the R error, not otherwise"
    assert all(o.value["args"] == "--k" for o in outcomes if o.ok)


def test_stopping_a_batch_early_stops_r(session: RSession, tmp_path: Path) -> None:
    items = [(input_file(tmp_path, f"{i}", "fine"), output_dir(tmp_path, f"{i}")) for i in range(5)]
    outcomes = session.process_many(items, [])
    assert next(outcomes).ok
    outcomes.close()
    assert not session.alive


def test_user_code_closing_all_connections_does_not_break_the_channel(write_r_script, tmp_path: Path) -> None:
    script = write_r_script(
        """
        process_file <- function(input_path, output_dir, args) {
          closeAllConnections()
          sink(file.path(output_dir, "sunk.txt"))
          print("into a sink the session must undo")
          basename(input_path)
        }
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"))
    items = [(input_file(tmp_path, name, "x"), output_dir(tmp_path, name)) for name in ["a", "b", "c"]]
    outcomes = list(session.process_many(items, []))
    session.close()
    assert [o.value for o in outcomes] == ["a", "b", "c"]
    assert session.starts == 1


def test_the_session_is_left_as_found_between_files(write_r_script, tmp_path: Path) -> None:
    """A file that changes the working folder, leaves a graphics device open or sinks output does not change
    what the next file sees."""
    script = write_r_script(
        """
        process_file <- function(input_path, output_dir, args) {
          seen <- list(wd = getwd(), devices = length(grDevices::dev.list()), sinks = sink.number())
          setwd(output_dir)
          grDevices::pdf(file.path(output_dir, "left-open.pdf"))
          sink(file.path(output_dir, "sunk.txt"))
          seen
        }
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"))
    items = [(input_file(tmp_path, name, "x"), output_dir(tmp_path, name)) for name in ["a", "b", "c"]]
    outcomes = list(session.process_many(items, []))
    session.close()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert len({o.value["wd"] for o in outcomes}) == 1
    assert [(o.value["devices"], o.value["sinks"]) for o in outcomes] == [(0, 0)] * 3


@pytest.mark.parametrize(
    ("r_value", "expected"),
    [
        (
            'list(kind = "image", width = 64L, ok = TRUE, ratio = 0.1 + 0.2)',
            {"kind": "image", "width": 64, "ok": True, "ratio": 0.1 + 0.2},  # 0.30000000000000004, not 0.3
        ),
        (r"'quote \" back \\ tab \t é'", 'quote " back \\ tab \t é'),
        (
            "list(nested = list(x = 1:3), when = as.Date('2026-01-01'))",
            {"nested": {"x": [1, 2, 3]}, "when": "2026-01-01"},
        ),
        ("c(1.5, NA, 3)", [1.5, None, 3]),
        ("NA", None),
        ("NULL", None),
        ("1e-300", 1e-300),
        ("123456789012", 123456789012),
        ("5L", 5),
        ("2147483647L", 2147483647),
        ("1/3", 1 / 3),  # every value round-trips: 17 significant digits where 15 do not
        ("c(0.1, 1/3, 2^53 + 2)", [0.1, 1 / 3, 2.0**53 + 2]),
        ("list(deep = list(x = 1/7, y = 'a'), m = 0.1)", {"deep": {"x": 1 / 7, "y": "a"}, "m": 0.1}),
        ("structure('{\"not\": \"raw\"}', class = 'json')", '{"not": "raw"}'),
        ("1e20", 1e20),
        ("-0.5", -0.5),
        ("NA_character_", None),
        ("FALSE", False),
        ("factor('lvl')", "lvl"),
        ("list(a = 1, a = 2)", {"a": 1, "a.1": 2}),
        ("-Inf", None),
        ("paste(rep('x', 70000), collapse = '')", {"truncated": True, "preview": '"' + "x" * 999}),
    ],
)
def test_r_return_values_become_json(write_r_script, tmp_path: Path, r_value: str, expected) -> None:
    script = write_r_script(f"process_file <- function(input_path, output_dir, args) {r_value}\n")
    session = RSession(str(script), str(tmp_path / "r.txt"))
    outcome = session.process(input_file(tmp_path, "a", "x"), output_dir(tmp_path, "a"), [])
    session.close()
    assert outcome.ok, outcome.error
    assert outcome.value == expected


def test_a_background_child_of_r_neither_hides_a_crash_nor_outlives_r(write_r_script, tmp_path: Path) -> None:
    """R in its own process group: when R dies, what it started dies with it, and the crash is a crash."""
    from tests.conftest import live_processes

    marker = f"apr-bg-{os.getpid()}-{tmp_path.name}"
    script = write_r_script(
        f"""
        process_file <- function(input_path, output_dir, args) {{
          system("APR_MARK={marker} sleep 1000 &")  # the marker in its environment: live_processes finds it
          if (readLines(input_path, n = 1L) == "crash") quit(save = "no", status = 9)
          "started a background child"
        }}
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"), file_timeout=120)
    try:
        items = [
            (input_file(tmp_path, name, action), output_dir(tmp_path, name))
            for name, action in [("bg", "fine"), ("dies", "crash"), ("after", "fine")]
        ]
        outcomes = list(session.process_many(items, []))
    finally:
        session.close()
    assert [o.kind for o in outcomes] == ["ok", "crash", "ok"]
    assert "R exited with status 9" in outcomes[1].error
    assert live_processes(marker) == []


def test_r_creates_each_output_folder_and_a_folder_it_cannot_create_fails_that_file_alone(
    session: RSession, tmp_path: Path
) -> None:
    """R makes each file's output folder (its parent exists); one it cannot make fails that file, not the batch."""
    made = tmp_path / "scratch" / "00000001"
    made.parent.mkdir()
    unmakeable = tmp_path / "no-such-parent" / "00000002"
    items = [
        (input_file(tmp_path, "a", "fine"), str(made)),
        (input_file(tmp_path, "b", "fine"), str(unmakeable)),
        (input_file(tmp_path, "c", "fine"), str(tmp_path / "scratch" / "00000003")),
    ]
    outcomes = list(session.process_many(items, []))
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "cannot create the file's output folder" in outcomes[1].error
    assert made.is_dir() and (tmp_path / "scratch" / "00000003").is_dir() and not unmakeable.exists()


def test_outcomes_arrive_while_r_still_works_on_the_batch(write_r_script, tmp_path: Path) -> None:
    """R writes each reply to a file no one waits on, and the client reads them at its own wake-ups: the outcome of
    a finished file reaches the caller while R works on the next one (so it is filed and journalled during the
    batch), not when the batch is over. Here R's third file waits for a marker the test writes only once it holds
    the first two outcomes."""
    marker = tmp_path / "go"
    script = write_r_script(
        r"""
        process_file <- function(input_path, output_dir, args) {
          if (readLines(input_path, n = 1L) != "wait") return("quick")
          for (i in 1:3000) if (file.exists(args[[1L]])) return("saw the marker") else Sys.sleep(0.01)
          stop("no marker after 30 s: the caller did not get the earlier outcomes while this file ran")
        }
        """
    )
    session = RSession(str(script), str(tmp_path / "r.txt"))
    items = [
        (input_file(tmp_path, n, a), output_dir(tmp_path, n)) for n, a in [("a", "go"), ("b", "go"), ("c", "wait")]
    ]
    seen = []
    try:
        for outcome in session.process_many(items, [str(marker)]):
            seen.append(outcome)
            if len(seen) == 2:
                marker.write_text("go")
    finally:
        session.close()
    assert [o.value if o.ok else o.error for o in seen] == ["quick", "quick", "saw the marker"]
    assert session.starts == 1


def test_r_answers_a_batch_once_on_the_pipe_and_each_file_in_the_replies_file(write_r_script, tmp_path) -> None:
    """The protocol of compute/session.R itself: the response pipe carries one line per batch (so R never wakes
    the client per file); each file's reply is a line of the replies file, with when it ended and where its output
    ends in the log; a failure stops the batch there when asked (stop_on_error), and "done" says how far R got."""
    script = write_r_script(
        r"""
        process_file <- function(input_path, output_dir, args) {
          if (basename(input_path) == "bad") stop("bad file")
          cat("did", basename(input_path), "\n")
          nchar(basename(input_path))
        }
        """
    )
    replies = tmp_path / "replies.jsonl"
    log = tmp_path / "r.log"
    files = [
        {"input": str(tmp_path / name), "output_dir": str(tmp_path / f"out-{name}")} for name in ("a", "bb", "bad", "c")
    ]
    requests = [
        {"cmd": "load", "script": str(script), "log": str(log), "packages": []},
        {"cmd": "batch", "files": files[:2], "args": [], "replies": str(replies)},
        {"cmd": "batch", "files": files[2:], "args": [], "replies": str(replies), "stop_on_error": True},
    ]
    (tmp_path / "requests").write_text("".join(json.dumps(r) + "\n" for r in requests))
    with (
        open(tmp_path / "requests", "rb") as request,
        open(tmp_path / "answers", "wb") as answers,
        open(log, "ab") as out,
    ):
        fds = (request.fileno(), answers.fileno())
        subprocess.run(
            ["Rscript", "--vanilla", SESSION_R, *map(str, fds)],
            check=True,
            pass_fds=fds,
            stdout=out,
            stderr=out,
            timeout=120,
        )
    answers = [json.loads(line) for line in (tmp_path / "answers").read_text().splitlines()]
    assert answers[0]["ok"] and answers[1:] == [{"done": 2}, {"done": 1}]
    lines = [json.loads(line) for line in replies.read_text().splitlines()]
    assert [(line["ok"], line.get("value"), line.get("error")) for line in lines] == [
        (True, 1, None),
        (True, 2, None),
        (False, None, "bad file"),
    ]
    assert all(isinstance(line["end"], float) and line["end"] > 1.7e9 for line in lines)
    assert log.read_text()[: lines[1]["log_end"]].endswith("did bb \n")


def test_a_long_file_costs_a_few_wake_ups_not_one_every_poll(write_r_script, tmp_path: Path, monkeypatch) -> None:
    """While no reply comes, the client sleeps twice as long each time (up to EXIT_CHECK_SECONDS): a file that takes
    2 s wakes it about ten times, not two hundred (POLL_SECONDS is 10 ms); the file's outcome still comes."""
    script = write_r_script("process_file <- function(input_path, output_dir, args) { Sys.sleep(2); 'slept' }\n")
    session = RSession(str(script), str(tmp_path / "r.txt"))
    waits = []
    real_wait = RSession._wait

    def counted(self, *args, **kwargs):
        waits.append(args)
        return real_wait(self, *args, **kwargs)

    monkeypatch.setattr(RSession, "_wait", counted)
    try:
        outcomes = list(session.process_many([(input_file(tmp_path, "a", "x"), output_dir(tmp_path, "a"))], []))
    finally:
        session.close()
    assert [o.value for o in outcomes] == ["slept"]
    assert 3 <= len(waits) <= 30, len(waits)


def test_files_whose_replies_are_lost_fail_and_are_not_sent_to_r_again(write_r_script, tmp_path, monkeypatch) -> None:
    """If R's replies cannot be read back (a full temporary disk: R's writes to the replies file fail), R still says
    how many files it did: those fail with a message saying so, instead of being sent to R again in a loop."""
    from azureml_parallel_r.compute import r_replies

    script = write_r_script("process_file <- function(input_path, output_dir, args) 'done'\n")
    monkeypatch.setattr(r_replies.Replies, "read", lambda self: [])
    session = RSession(str(script), str(tmp_path / "r.txt"))
    items = [(input_file(tmp_path, n, "x"), output_dir(tmp_path, n)) for n in ("a", "b")]
    try:
        outcomes = list(session.process_many(items, []))
    finally:
        session.close()
    assert [(o.ok, o.kind) for o in outcomes] == [(False, "crash"), (False, "crash")]
    assert "its reply could not be read back" in outcomes[0].error and session.starts == 1
