# A persistent R session for azureml-parallel-r: R starts once and serves file after file.
#
# Started once per entry-script process by include/entry/r_session.py:
#
#   Rscript --vanilla session.R REQUEST_FD RESPONSE_FD
#
# The protocol runs over two dedicated pipe file descriptors, never over stdin/stdout/stderr, so whatever
# the user's script prints (print, cat, message, warnings, even lines that look like protocol messages)
# cannot corrupt it; stdout and stderr go to the session's log file. Each message is one line of JSON.
#
#   -> {"cmd": "load", "script": PATH, "log": LOG_PATH, "packages": [{"name": ..., "version": ..., "minimum": ...,
#       "source": ...}, ...]}  (declared packages, include/entry/r_packages.py; checked with the ones the script names)
#   <- {"ok": true, "r_version": ..., "functions": [...]} | {"ok": false, "error": ...}  (functions: those of
#      process_file and process_partition the script defines)
#   -> {"cmd": "batch", "files": [{"input": PATH, "output_dir": DIR}, ...], "args": [...], "replies": PATH}
#      (R creates each DIR, whose parent exists, right before its file). An item with a "table" is a partition: INPUT
#      is a CSV without a header written by compute/tables.py; {"table": {"classes": [...], "names": [...], "na": NA_TEXT,
#      "cr": CR_TEXT, "keys": {...}}} says how to read it (column classes and names, the text of a missing value and of
#      a carriage return) and its partition keys, and R calls
#      process_partition(data, keys, output_dir, args) with the data.frame instead of process_file().
#   one line per file, in order, appended to the file REPLIES and flushed as soon as the file is done:
#      {"ok": true, "value": ..., "warnings": [...], "seconds": s, "end": t, "log_end": n}
#    | {"ok": false, "error": ..., "call": ..., "warnings": [...], "seconds": s, "end": t, "log_end": n}
#      ("end": when the file was done, seconds since the epoch: the next file's start)
#   <- then, on the response pipe, once the batch is over: {"done": n_files} (R stopped early when n_files is less
#      than the batch's files)
#   -> {"cmd": "exit"} or end of file: the session quits
#
# Rscript --vanilla session.R --check-packages SCRIPT PACKAGES_JSON checks the packages alone (before a submission).
#
# A whole mini-batch travels in one request, and its replies go to a plain file that no one waits on, so R never
# waits for Python between files and never wakes it: Python reads the replies when it wakes up on its own (a few
# times a second, or when the batch is over) and files the outputs then. An R error in process_file() is reported
# for that file and the loop goes on. A crash (segfault, quit()) or a hang is detected by the Python side (the file
# in progress is the first one without a reply), which restarts R for the remaining files. "log_end" is the size of
# the log after the file, so Python can cut each failed file's own output out of the shared log.

# The packages the script names itself, found in its parsed code without running it (calls inside its functions
# too): library(x) and require(x) (a name, or a string; not with character.only = TRUE, whose argument is a
# variable), requireNamespace("x") and loadNamespace("x"), x::f and x:::f.
named_packages <- function(exprs) {
  found <- character()
  attach_calls <- c("library", "require")
  namespace_calls <- c("requireNamespace", "loadNamespace")
  is_empty <- function(x) identical(x, quote(expr = ))
  walk <- function(e) {
    if (is.call(e)) {
      fun <- if (is.name(e[[1L]])) as.character(e[[1L]]) else ""
      if (fun %in% c("::", ":::") && length(e) == 3L) {
        found <<- c(found, as.character(e[[2L]]))
      } else if (fun %in% c(attach_calls, namespace_calls) && length(e) >= 2L) {
        args <- as.list(e)[-1L]
        named <- names(args)
        first <- if (!is.null(named) && "package" %in% named) args[["package"]] else args[[1L]]
        literal <- isTRUE(tryCatch(eval(args[["character.only"]], baseenv()), error = function(err) FALSE))
        if (is.character(first) && length(first) == 1L) {
          found <<- c(found, first)
        } else if (is.name(first) && fun %in% attach_calls && !literal) {
          found <<- c(found, as.character(first))
        }
      }
    }
    if (is.call(e) || is.pairlist(e) || is.expression(e)) {
      parts <- as.list(e)
      for (i in seq_along(parts)) if (!is_empty(parts[[i]])) walk(parts[[i]])
    }
  }
  for (i in seq_along(exprs)) walk(exprs[[i]])
  unique(found[nzchar(found)])
}

# What keeps the script's packages from loading: each declared package (with the version renv.lock or "==" asks
# for, or the minimum of a DESCRIPTION or ">="), then each package the script names that was not declared.
package_problems <- function(named, declared) {
  problems <- character()
  version_of <- function(name) tryCatch(as.character(utils::packageVersion(name)), error = function(e) NA)
  loads <- function(name) isTRUE(suppressWarnings(suppressMessages(requireNamespace(name, quietly = TRUE))))
  for (package in declared) {
    name <- package$name
    want <- if (!is.null(package$version)) paste("==", package$version)
            else if (!is.null(package$minimum)) paste(">=", package$minimum) else ""
    label <- trimws(paste(name, want))
    where <- if (!is.null(package$source) && nzchar(package$source)) package$source else "declared"
    if (!loads(name)) {
      problems <- c(problems, sprintf("%s (%s: not installed)", label, where))
      next
    }
    have <- version_of(name)
    off <- isTRUE(tryCatch(
      (!is.null(package$version) && numeric_version(have) != numeric_version(package$version)) ||
        (!is.null(package$minimum) && numeric_version(have) < numeric_version(package$minimum)),
      error = function(e) TRUE))
    if (off) problems <- c(problems, sprintf("%s (%s: %s installed)", label, where, have))
  }
  declared_names <- vapply(declared, function(p) p$name, "")
  for (name in setdiff(named, declared_names)) {
    if (!loads(name)) problems <- c(problems, sprintf("%s (named by the script, not declared: not installed)", name))
  }
  problems
}

packages_error <- function(problems) {
  paste0(
    "the R script needs R packages that do not load here (R library: ", paste(.libPaths(), collapse = ":"), "): ",
    paste(problems, collapse = "; "), ". Declare every package the script uses next to it (renv.lock, or a ",
    "DESCRIPTION's Imports) or in r_packages (the connection's extra or the operator's argument), and install them ",
    "where the script runs (on this machine: python -m azureml_parallel_r.r_install SCRIPT, which a checkout's ",
    "scripts/setup.sh --r-packages SCRIPT runs; the Azure engines build the declared ones into the compute image, ",
    "unless the connection names a registered environment)")
}

# Rscript --vanilla session.R --check-packages SCRIPT PACKAGES_JSON: the same check before a submission (see
# azureml_parallel_r.r_scripts.check_packages); prints the error and exits with status 3 when a package is missing.
check_packages_cli <- function(argv) {
  if (!requireNamespace("jsonlite", quietly = TRUE)) stop("the R package 'jsonlite' is not installed")
  parsed <- parse(argv[[1L]], keep.source = FALSE, encoding = "UTF-8")
  declared <- jsonlite::fromJSON(argv[[2L]], simplifyVector = FALSE)
  problems <- package_problems(named_packages(parsed), declared)
  if (length(problems)) {
    cat(packages_error(problems), "\n", sep = "")
    quit(save = "no", status = 3L)
  }
  invisible(NULL)
}

run_session <- function() {
  argv <- commandArgs(trailingOnly = TRUE)
  if (length(argv) != 2L) {
    stop("usage: Rscript session.R REQUEST_FD RESPONSE_FD (started by azureml_parallel_r/compute/r_session.py)")
  }
  if (!requireNamespace("jsonlite", quietly = TRUE)) {
    stop("the R package 'jsonlite' is not installed: apt-get install r-cran-jsonlite ",
         "(or install.packages('jsonlite'))")
  }
  request_path <- paste0("/dev/fd/", argv[[1L]])
  response_path <- paste0("/dev/fd/", argv[[2L]])
  user_env <- new.env(parent = globalenv())
  max_warnings <- 20L
  max_value_bytes <- 1048576  # a returned value bigger than this in memory is summarised, not encoded
  log_path <- NULL

  # Our two connections stay open; if user code closes all connections they are opened again.
  # Connection numbers are reused, so compare the connection's identity (conn_id), not just its number.
  # Checked before every write, so without a tryCatch (~6 us): a closed connection is gone from getAllConnections().
  is_usable <- function(con) {
    if (is.null(con)) return(FALSE)
    number <- as.integer(con)
    number %in% getAllConnections() && identical(attr(getConnection(number), "conn_id"), attr(con, "conn_id"))
  }
  response_con <- NULL
  respond <- function(line) {
    force(line)  # evaluate the (lazy) argument, which may run user code, before checking our connection
    if (!is_usable(response_con)) response_con <<- file(response_path, open = "w", encoding = "UTF-8", raw = TRUE)
    writeLines(line, response_con, useBytes = TRUE)
    flush(response_con)
  }
  # The batch's replies: a plain file, appended to and flushed once per file (opened again if user code closed it)
  replies_con <- NULL
  replies_path <- NULL
  write_reply <- function(line) {
    force(line)
    if (!is_usable(replies_con)) replies_con <<- file(replies_path, open = "ab", raw = TRUE)
    writeLines(line, replies_con, useBytes = TRUE)
    flush(replies_con)
  }
  request_con <- NULL
  next_request <- function() {
    if (!is_usable(request_con)) request_con <<- file(request_path, open = "r", encoding = "UTF-8", raw = TRUE)
    line <- readLines(request_con, n = 1L, warn = FALSE)
    if (length(line) == 0L) return(NULL)
    jsonlite::fromJSON(line, simplifyVector = FALSE)
  }

  to_json <- function(x) {
    enc2utf8(as.character(jsonlite::toJSON(x, auto_unbox = TRUE, null = "null", na = "null", digits = NA,
                                           force = TRUE, json_verbatim = TRUE)))
  }

  # A number keeps its value: 15 significant digits where they give the same double back (0.1, not
  # 0.10000000000000001), else 17, which always do (15 alone turn 0.1 + 0.2 into 0.3). jsonlite stops at 15, so the
  # doubles of a value it encodes are written here first and handed to it verbatim (class "json").
  number_text <- function(x) {
    text <- sprintf("%.15g", x)
    inexact <- as.numeric(text) != x
    if (any(inexact)) text[inexact] <- sprintf("%.17g", x[inexact])
    text
  }
  exact_numbers <- function(x) {
    if (inherits(x, "json")) return(unclass(x))  # a value's own "json" strings stay strings, never raw JSON
    if (is.double(x) && !is.object(x) && is.null(dim(x)) && length(x) > 0L && all(is.finite(x))) {
      text <- number_text(x)
      if (identical(text, sprintf("%.15g", x))) return(x)
      return(structure(if (length(x) == 1L) text else paste0("[", paste(text, collapse = ","), "]"), class = "json"))
    }
    if (is.list(x) && !is.object(x) && length(x) > 0L) x[] <- lapply(x, exact_numbers)
    x
  }

  # The R value returned by process_file() becomes part of the result row: small, JSON-encoded once.
  # Scalars and flat named lists of plain scalars (the common case) skip jsonlite, which costs ~0.1 ms;
  # numbers go through number_text (sprintf, ~2 us), not format(digits = 15) (~10 us).
  scalar_json <- function(x) {
    if (!is.atomic(x) || length(x) != 1L || !is.null(attributes(x)) || is.na(x)) return(NULL)
    if (is.double(x)) return(if (is.finite(x)) number_text(x) else NULL)
    if (is.integer(x)) return(sprintf("%d", x))
    if (is.logical(x)) return(if (x) "true" else "false")
    if (is.character(x) && nchar(x, type = "bytes") <= 65536L && validUTF8(x) && !grepl('["\\\\[:cntrl:]]', x)) {
      return(paste0('"', x, '"'))
    }
    NULL
  }
  flat_json <- function(value) {
    keys <- names(value)
    if (!is.list(value) || length(value) == 0L || length(value) > 100L || is.null(keys) ||
        !identical(names(attributes(value)), "names") || anyDuplicated(keys) ||
        !all(grepl("^[A-Za-z0-9_.-]+$", keys))) return(NULL)
    parts <- lapply(value, scalar_json)
    if (any(vapply(parts, is.null, logical(1L)))) return(NULL)
    paste0("{", paste0('"', keys, '":', unlist(parts), collapse = ","), "}")
  }
  encode_value <- function(value) {
    if (is.null(value)) return("null")
    encoded <- scalar_json(value)  # a scalar is small (a long string is not taken here): no size check needed
    if (!is.null(encoded)) return(encoded)
    encoded <- flat_json(value)  # at most 100 such scalars, so bounded; before object.size(), which costs ~7 us
    if (!is.null(encoded) && nchar(encoded, type = "bytes") <= 65536L) return(encoded)
    # a big value is cut down before it is encoded (encoding 40 MB only to keep 1 KB of it costs memory and time)
    size <- as.numeric(utils::object.size(value))
    if (size > max_value_bytes) {
      preview <- paste(utils::capture.output(utils::str(value, list.len = 10L, vec.len = 3L, nchar.max = 200L)),
                       collapse = " ")
      return(to_json(list(truncated = TRUE, bytes_in_r = size, preview = substr(preview, 1L, 1000L))))
    }
    encoded <- tryCatch(to_json(exact_numbers(value)), error = function(e) NULL)
    if (is.null(encoded)) encoded <- to_json(paste(format(value), collapse = " "))
    if (nchar(encoded, type = "bytes") > 65536L) {
      encoded <- to_json(list(truncated = TRUE, preview = substr(encoded, 1L, 1000L)))
    }
    encoded
  }

  # The functions a script may define; a file calls process_file, a partition of a table process_partition.
  entry_points <- c("process_file", "process_partition")
  signatures <- c(process_file = "process_file(input_path, output_dir, args)",
                  process_partition = "process_partition(data, keys, output_dir, args)")
  user_function <- function(name) {
    f <- get0(name, envir = user_env, inherits = FALSE)
    if (!is.function(f)) {
      other <- setdiff(entry_points, name)
      stop(sprintf("the R script defines no %s, which %s needs (it defines %s only)", signatures[[name]],
                   if (name == "process_file") "a file input" else "a table input (an MLTable folder)",
                   signatures[[other]]), call. = FALSE)
    }
    f
  }

  call_text <- function(cond) {
    cl <- conditionCall(cond)
    if (is.null(cl)) return(NULL)
    paste(deparse(cl, nlines = 3L), collapse = " ")
  }

  # The size of the log, for Python to cut each failed file's own output out of it: one stat, without
  # file.size()'s data frame of times (~7 us a call), through the internal it wraps where this R has it.
  file_bytes <- function(path) .Internal(file.info(path, FALSE))$size
  if (!identical(tryCatch(file_bytes(R.home()), error = function(e) NULL), file.size(R.home()))) {
    file_bytes <- function(path) file.size(path)
  }
  log_size <- function() {
    if (is.null(log_path)) return(0)
    size <- file_bytes(log_path)
    if (is.na(size)) 0 else size
  }

  # sink.number() without its match.arg (~4 us a call): the internal it wraps, where this R has it
  sinks <- function(output) .Internal(sink.number(output))
  expected <- c(sink.number(), sink.number(type = "message"))
  if (!identical(tryCatch(c(sinks(TRUE), sinks(FALSE)), error = function(e) NULL), expected)) {
    sinks <- function(output) if (output) sink.number() else sink.number(type = "message")
  }

  # The locale the session started with (UTF-8: file names travel as UTF-8). A script that calls Sys.setlocale()
  # would otherwise leave the next file to fail on its name: it is put back between files like the working folder.
  # Sys.getlocale() without its match.arg (~1 us a call): the internal it wraps, where this R has it.
  locale_now <- function() .Internal(Sys.getlocale(1L))
  if (!identical(tryCatch(locale_now(), error = function(e) NULL), Sys.getlocale())) locale_now <- Sys.getlocale
  start_locale <- locale_now()
  restore_locale <- function() {
    if (!grepl("=", start_locale, fixed = TRUE)) {  # one locale for every category
      suppressWarnings(Sys.setlocale("LC_ALL", start_locale))
      return(invisible(NULL))
    }
    for (pair in strsplit(start_locale, ";", fixed = TRUE)[[1L]]) {
      kv <- strsplit(pair, "=", fixed = TRUE)[[1L]]
      if (length(kv) == 2L && kv[[1L]] %in% c("LC_CTYPE", "LC_COLLATE", "LC_TIME", "LC_MONETARY", "LC_MESSAGES",
                                                "LC_PAPER", "LC_MEASUREMENT", "LC_NUMERIC")) {
        suppressWarnings(Sys.setlocale(kv[[1L]], kv[[2L]]))
      }
    }
  }

  # Leave the R session as we found it: user code may sink(), setwd(), open graphics devices or change the
  # locale. Cheap checks first (a getcwd and no other system call when nothing changed), repairs only when needed.
  dev_cur <- grDevices::dev.cur  # looked up once: `::` costs ~3 us a call
  reset_session <- function(wd) {
    if (sinks(TRUE) > 0L) while (sink.number() > 0L) sink()
    if (sinks(FALSE) > 2L) while (sink.number(type = "message") > 2L) sink(type = "message")
    if (!identical(getwd(), wd)) setwd(wd)
    if (dev_cur() > 1L) grDevices::graphics.off()
    if (!identical(locale_now(), start_locale)) restore_locale()
    flush(stdout())
    flush(stderr())
  }

  # Per-file state and condition handlers, made once (not a closure per file).
  warnings_seen <- character(0)
  on_warning <- function(w) {
    if (length(warnings_seen) < max_warnings) warnings_seen <<- c(warnings_seen, conditionMessage(w))
    invokeRestart("muffleWarning")
  }
  on_error <- function(e) structure(list(error = conditionMessage(e), call = call_text(e)), class = "file_error")

  # One file (or partition): its reply line, still without its log_end. Timed with the wall clock (Sys.time: no
  # system call), not proc.time (two getrusage calls each).
  process_one <- function(item, input, output_dir, args, wd) {
    started <- as.numeric(Sys.time())
    warnings_seen <<- character(0)
    value <- tryCatch(
      withCallingHandlers({
        # the file's output folder is made here, in R's loop, as a hand-written loop would make it: Python
        # making the mini-batch's folders before sending it would hold R up for every one of them
        if (!dir.create(output_dir, showWarnings = FALSE) && !dir.exists(output_dir)) {
          stop("cannot create the file's output folder ", output_dir, call. = FALSE)
        }
        if (is.null(item$table)) {
          encode_value(user_function("process_file")(input, output_dir, args))
        } else {
          data <- read_partition(input, item$table)
          encode_value(user_function("process_partition")(data, partition_keys(item$table$keys), output_dir, args))
        }
      }, warning = on_warning),
      error = on_error
    )
    reset_session(wd)
    ended <- as.numeric(Sys.time())
    seconds <- sprintf("%.6f,\"end\":%.6f", ended - started, ended)
    warnings_json <- if (length(warnings_seen) == 0L) "[]" else to_json(as.list(warnings_seen))
    if (!inherits(value, "file_error")) {
      return(paste0('{"ok":true,"value":', value, ',"warnings":', warnings_json, ',"seconds":', seconds))
    }
    encoded <- to_json(list(ok = FALSE, error = value$error, call = value$call, warnings = as.list(warnings_seen)))
    paste0(substr(encoded, 1L, nchar(encoded) - 1L), ',"seconds":', seconds)
  }

  # A batch may ask R to stop early, at a file boundary, so that the client can start a fresh R for the rest:
  # after a failed file (stop_on_error), after max_files files, or once the log is past max_log_bytes.
  process_batch <- function(req) {
    args <- unlist(req$args, use.names = FALSE)
    if (is.null(args)) args <- character(0)
    stop_on_error <- isTRUE(req$stop_on_error)
    max_files <- if (is.null(req$max_files)) .Machine$integer.max else req$max_files
    max_log_bytes <- if (is.null(req$max_log_bytes)) Inf else req$max_log_bytes
    wd <- getwd()
    done <- 0L
    replies_path <<- req$replies
    on.exit({
      if (is_usable(replies_con)) close(replies_con)
      replies_con <<- NULL
    })
    for (item in req$files) {
      line <- process_one(item, item$input, item$output_dir, args, wd)
      log_end <- log_size()
      write_reply(sprintf('%s,"log_end":%.0f}', line, log_end))
      done <- done + 1L
      failed <- !startsWith(line, '{"ok":true')
      if ((failed && stop_on_error) || done >= max_files || log_end > max_log_bytes) break
    }
    respond(sprintf('{"done":%d}', done))
  }

  load_script <- function(req) {
    script <- req$script
    log_path <<- req$log
    if (!file.exists(script)) return(list(ok = FALSE, error = paste0("R script not found: ", script)))
    parsed <- tryCatch(parse(script, keep.source = FALSE, encoding = "UTF-8"), error = function(e) e)
    if (inherits(parsed, "error")) {
      # only the first line (file:line:column: what); R's message goes on to echo the source lines
      where <- strsplit(conditionMessage(parsed), "\n", fixed = TRUE)[[1L]][1L]
      return(list(ok = FALSE, error = paste0("R script does not parse: ", where)))
    }
    problems <- package_problems(named_packages(parsed), req$packages)
    if (length(problems)) return(list(ok = FALSE, error = packages_error(problems)))
    loaded <- tryCatch({
      for (expr in parsed) eval(expr, envir = user_env)
      NULL
    }, error = function(e) e)
    if (inherits(loaded, "error")) {
      return(list(ok = FALSE, error = paste0("sourcing the R script failed: ", conditionMessage(loaded))))
    }
    functions <- Filter(function(name) is.function(get0(name, envir = user_env, inherits = FALSE)), entry_points)
    if (length(functions) == 0L) {
      return(list(ok = FALSE, error = paste0(
        "the R script defines neither process_file(input_path, output_dir, args) (for files) nor ",
        "process_partition(data, keys, output_dir, args) (for tables): define the one for your input: ", script)))
    }
    list(ok = TRUE, r_version = R.version.string, functions = as.list(functions))
  }

  loaded <- FALSE
  repeat {
    req <- next_request()
    if (is.null(req) || identical(req$cmd, "exit")) break
    if (identical(req$cmd, "load")) {
      reply <- load_script(req)
      loaded <- isTRUE(reply$ok)
      respond(to_json(reply))
    } else if (identical(req$cmd, "batch") && loaded && is.character(req$replies)) {
      process_batch(req)
    } else {
      respond(to_json(list(ok = FALSE, error = paste0("unexpected command: ", req$cmd))))
    }
  }
  invisible(NULL)
}

# partitions.R, beside this file: how a table's partition becomes a data.frame
session_file <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)[[1L]])
source(file.path(dirname(normalizePath(session_file)), "partitions.R"), encoding = "UTF-8")

cli_args <- commandArgs(trailingOnly = TRUE)
if (length(cli_args) == 3L && identical(cli_args[[1L]], "--check-packages")) {
  check_packages_cli(cli_args[-1L])
} else {
  run_session()
}
