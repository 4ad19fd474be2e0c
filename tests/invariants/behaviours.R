# The invariant harness's R script: what it does with a file is the file's first line (tests/invariants/trees.py).
# Every file it is given is traced (its real path's bytes in hex, a line each, appended to $APR_TRACE: a name may hold
# any character but "/" and NUL), so the harness can check that nothing outside the input folder was ever read; a
# file that succeeds leaves a copy of its bytes in its output_dir.
process_file <- function(input_path, output_dir, args) {
  traced <- paste(as.character(charToRaw(normalizePath(input_path))), collapse = "")
  cat(traced, "\n", sep = "", file = Sys.getenv("APR_TRACE"), append = TRUE)
  action <- readLines(input_path, n = 1L, warn = FALSE)
  action <- if (length(action)) action else "ok"
  switch(action,
    error = stop("the harness's R error"),
    crash = tools::pskill(Sys.getpid(), tools::SIGKILL),
    quit = quit(save = "no", status = 7L),
    hang = Sys.sleep(1000),
    memory = { x <- numeric(1e12); x[1] },
    spawn = system(sprintf("APR_MARK=%s setsid sleep 1000 &", Sys.getenv("APR_MARKER"))),
    outside = {
      # outside its output_dir: beside it, into the input folder, and into the run's results/ itself
      writeLines("stray", file.path(dirname(output_dir), "stray-beside.txt"))
      writeLines("stray", file.path(dirname(input_path), paste0("written-by-r-", basename(output_dir), ".txt")))
      results <- file.path(Sys.getenv("AZUREML_BI_OUTPUT_PATH"), "results")
      dir.create(results, recursive = TRUE, showWarnings = FALSE)
      writeLines("stray", file.path(results, "stray-by-r.txt"))
    },
    NULL
  )
  size <- file.info(input_path)$size
  writeBin(readBin(input_path, "raw", size), file.path(output_dir, "copy.bin"))
  list(action = action, bytes = size)
}
