# Persistent R worker for azureml-parallel-r.
#
# Started once per Python worker process by include/entry/r_worker.py:
#
#   Rscript --vanilla worker.R REQUEST_FD RESPONSE_FD
#
# The protocol runs over two dedicated pipe file descriptors, never over stdin/stdout/stderr, so whatever
# the user's script prints (print, cat, message, warnings, even lines that look like protocol messages)
# cannot corrupt it; stdout and stderr go to the worker's log file. Each message is one line of JSON.
#
#   -> {"cmd": "load", "script": PATH}          <- {"ok": true, "r_version": ...} | {"ok": false, "error": ...}
#   -> {"cmd": "process", "input": PATH, "output_dir": DIR, "args": [...]}
#                                               <- {"ok": true, "value": ..., "warnings": [...]}
#                                                | {"ok": false, "error": ..., "call": ..., "warnings": [...]}
#   -> {"cmd": "exit"} or end of file           the worker quits
#
# An R error inside process_file() is reported for that file and the loop goes on. A crash (segfault,
# quit()) or a hang is detected by the Python side, which restarts the worker.

run_worker <- function() {
  argv <- commandArgs(trailingOnly = TRUE)
  if (length(argv) != 2L) {
    stop("usage: Rscript worker.R REQUEST_FD RESPONSE_FD (started by include/entry/r_worker.py)")
  }
  if (!requireNamespace("jsonlite", quietly = TRUE)) {
    stop("the R package 'jsonlite' is not installed: apt-get install r-cran-jsonlite ",
         "(or install.packages('jsonlite'))")
  }
  request_path <- paste0("/dev/fd/", argv[[1L]])
  response_path <- paste0("/dev/fd/", argv[[2L]])
  user_env <- new.env(parent = globalenv())
  max_warnings <- 20L

  # Each response opens the pipe afresh: a user script that closes all connections cannot break it.
  respond <- function(msg) {
    line <- jsonlite::toJSON(msg, auto_unbox = TRUE, null = "null", na = "null", digits = NA,
                             force = TRUE)
    con <- file(response_path, open = "w", encoding = "UTF-8")
    on.exit(close(con))
    writeLines(enc2utf8(as.character(line)), con, useBytes = TRUE)
  }

  request_con <- file(request_path, open = "r", encoding = "UTF-8")
  next_request <- function() {
    line <- tryCatch(readLines(request_con, n = 1L, warn = FALSE), error = function(e) {
      # A user script closed our connection: reopen the same pipe.
      request_con <<- file(request_path, open = "r", encoding = "UTF-8")
      readLines(request_con, n = 1L, warn = FALSE)
    })
    if (length(line) == 0L) return(NULL)
    jsonlite::fromJSON(line, simplifyVector = FALSE)
  }

  # The R value returned by process_file() becomes part of the result row; keep it small and JSON-able.
  as_json_value <- function(value) {
    if (is.null(value)) return(NULL)
    encoded <- tryCatch(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", na = "null",
                                         digits = NA, force = TRUE),
                        error = function(e) NULL)
    if (is.null(encoded)) return(paste(format(value), collapse = " "))
    if (nchar(encoded, type = "bytes") > 65536L) {
      return(list(truncated = TRUE, preview = substr(encoded, 1L, 1000L)))
    }
    jsonlite::fromJSON(encoded, simplifyVector = FALSE)
  }

  call_text <- function(cond) {
    cl <- conditionCall(cond)
    if (is.null(cl)) return(NULL)
    paste(deparse(cl, nlines = 3L), collapse = " ")
  }

  # Leave the R session as we found it: user code may sink(), setwd() or open graphics devices.
  reset_session <- function(wd) {
    flush(stdout())
    flush(stderr())
    while (sink.number() > 0L) sink()
    while (sink.number(type = "message") > 2L) sink(type = "message")
    if (!identical(getwd(), wd)) setwd(wd)
    if (length(grDevices::dev.list()) > 0L) grDevices::graphics.off()
  }

  process <- function(req) {
    if (!exists("process_file", envir = user_env, inherits = FALSE)) {
      return(list(ok = FALSE, error = "no R script is loaded"))
    }
    warnings_seen <- character(0)
    wd <- getwd()
    on.exit(reset_session(wd))
    args <- unlist(req$args, use.names = FALSE)
    if (is.null(args)) args <- character(0)
    result <- tryCatch(
      withCallingHandlers(
        list(ok = TRUE, value = as_json_value(
          get("process_file", envir = user_env)(req$input, req$output_dir, args))),
        warning = function(w) {
          if (length(warnings_seen) < max_warnings) warnings_seen <<- c(warnings_seen, conditionMessage(w))
          invokeRestart("muffleWarning")
        }
      ),
      error = function(e) list(ok = FALSE, error = conditionMessage(e), call = call_text(e))
    )
    result$warnings <- as.list(warnings_seen)
    result
  }

  load_script <- function(req) {
    script <- req$script
    if (!file.exists(script)) return(list(ok = FALSE, error = paste0("R script not found: ", script)))
    parsed <- tryCatch(parse(script, keep.source = FALSE, encoding = "UTF-8"), error = function(e) e)
    if (inherits(parsed, "error")) {
      return(list(ok = FALSE, error = paste0("R script does not parse: ", conditionMessage(parsed))))
    }
    loaded <- tryCatch({
      for (expr in parsed) eval(expr, envir = user_env)
      NULL
    }, error = function(e) e)
    if (inherits(loaded, "error")) {
      return(list(ok = FALSE, error = paste0("sourcing the R script failed: ", conditionMessage(loaded))))
    }
    fun <- get0("process_file", envir = user_env, inherits = FALSE)
    if (!is.function(fun)) {
      return(list(ok = FALSE, error = paste0(
        "the R script defines no function process_file(input_path, output_dir, args): ", script)))
    }
    list(ok = TRUE, r_version = R.version.string)
  }

  repeat {
    req <- next_request()
    if (is.null(req) || identical(req$cmd, "exit")) break
    response <- switch(req$cmd,
      load = load_script(req),
      process = process(req),
      list(ok = FALSE, error = paste0("unknown command: ", req$cmd))
    )
    respond(response)
  }
  invisible(NULL)
}

run_worker()
