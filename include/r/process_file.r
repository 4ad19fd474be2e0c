# Example R script for azureml-parallel-r: one input file in, results in output_dir.
#
# Contract: define process_file(input_path, output_dir, args). It reads one input file, writes its
# results into output_dir (a private scratch folder; the runtime moves it into results/ only when the
# file succeeds) and may return a small list or scalar that becomes part of the file's result row.
# An R error means that file failed; the batch goes on.
#
#   PNG / JPEG images       -> stats.json (width, height, channels, per-channel mean and sd)
#                              + thumbnail.png (at most --thumbnail-size pixels a side, default 32)
#   .rds / .RData tables    -> summary.csv per data frame (one row per column)
#   anything else           -> an R error naming the file
#
# Run it on one file by hand (the same code path, no Python involved):
#   Rscript process_file.r --input photo.png --output-dir out/ [--thumbnail-size 64]
#
# R packages: png, jpeg, jsonlite (Debian: r-cran-png r-cran-jpeg r-cran-jsonlite).

option_value <- function(args, name, default) {
  at <- match(name, args)
  if (is.na(at)) return(default)
  if (at == length(args)) stop(sprintf("option %s needs a value", name))
  args[[at + 1L]]
}

read_image <- function(input_path, ext) {
  reader <- if (ext == "png") png::readPNG else jpeg::readJPEG
  tryCatch(reader(input_path), error = function(e) {
    stop(sprintf("cannot read %s image '%s': %s", toupper(ext), input_path, conditionMessage(e)),
         call. = FALSE)
  })
}

summarise_image <- function(input_path, output_dir, args, ext) {
  pixels <- read_image(input_path, ext)
  dims <- dim(pixels)
  if (length(dims) == 2L) pixels <- array(pixels, dim = c(dims, 1L))
  height <- dim(pixels)[[1L]]
  width <- dim(pixels)[[2L]]
  channels <- dim(pixels)[[3L]]
  channel_names <- switch(as.character(channels), "1" = "gray", "2" = c("gray", "alpha"),
                          "3" = c("red", "green", "blue"), "4" = c("red", "green", "blue", "alpha"))
  per_channel <- lapply(seq_len(channels), function(k) {
    values <- pixels[, , k]
    list(channel = channel_names[[k]], mean = mean(values),
         sd = if (length(values) > 1L) stats::sd(values) else 0)
  })
  stats <- list(file = basename(input_path), width = width, height = height, channels = channels,
                per_channel = per_channel)
  writeLines(jsonlite::toJSON(stats, auto_unbox = TRUE, digits = 6, pretty = TRUE),
             file.path(output_dir, "stats.json"))

  size <- as.integer(option_value(args, "--thumbnail-size", "32"))
  if (is.na(size) || size < 1L) stop("--thumbnail-size must be a positive whole number")
  step <- max(1, max(height, width) / size)
  rows <- unique(pmin(height, as.integer(round(seq(1, height, by = step)))))
  cols <- unique(pmin(width, as.integer(round(seq(1, width, by = step)))))
  thumb <- pixels[rows, cols, , drop = FALSE]
  if (channels == 1L) thumb <- thumb[, , 1L]
  png::writePNG(thumb, file.path(output_dir, "thumbnail.png"))
  list(kind = "image", width = width, height = height, channels = channels)
}

summarise_column <- function(name, column) {
  numeric <- is.numeric(column) || is.logical(column)
  values <- if (numeric) as.numeric(column) else NULL
  present <- if (numeric) values[!is.na(values)] else NULL
  stat <- function(f) if (numeric && length(present) > 0L) f(present) else NA_real_
  data.frame(column = name, type = class(column)[[1L]], n = length(column),
             n_missing = sum(is.na(column)), n_unique = length(unique(column)),
             mean = stat(mean), sd = if (length(present) > 1L) stats::sd(present) else NA_real_,
             min = stat(min), max = stat(max), stringsAsFactors = FALSE)
}

write_table_summary <- function(table, output_file) {
  rows <- lapply(names(table), function(name) summarise_column(name, table[[name]]))
  summary <- if (length(rows) > 0L) do.call(rbind, rows) else data.frame()
  utils::write.csv(summary, output_file, row.names = FALSE)
  nrow(table)
}

load_tables <- function(input_path, ext) {
  if (ext == "rds") {
    object <- tryCatch(readRDS(input_path), error = function(e) {
      stop(sprintf("cannot read .rds file '%s': %s", input_path, conditionMessage(e)), call. = FALSE)
    })
    return(list(data = object))
  }
  env <- new.env()
  tryCatch(load(input_path, envir = env), error = function(e) {
    stop(sprintf("cannot read .RData file '%s': %s", input_path, conditionMessage(e)), call. = FALSE)
  })
  mget(sort(ls(env)), envir = env)
}

summarise_tables <- function(input_path, output_dir, ext) {
  objects <- load_tables(input_path, ext)
  tables <- Filter(is.data.frame, objects)
  if (length(tables) == 0L) {
    stop(sprintf("'%s' holds no data frame (found: %s)", input_path,
                 paste(vapply(objects, function(o) class(o)[[1L]], ""), collapse = ", ")), call. = FALSE)
  }
  rows <- vapply(names(tables), function(name) {
    file <- if (length(tables) == 1L) "summary.csv" else paste0(name, "_summary.csv")
    write_table_summary(tables[[name]], file.path(output_dir, file))
  }, numeric(1))
  list(kind = "table", tables = as.list(rows))
}

process_file <- function(input_path, output_dir, args = character(0)) {
  ext <- tolower(tools::file_ext(input_path))
  if (ext %in% c("png", "jpg", "jpeg")) {
    return(summarise_image(input_path, output_dir, args, if (ext == "png") "png" else "jpeg"))
  }
  if (ext %in% c("rds", "rdata", "rda")) {
    return(summarise_tables(input_path, output_dir, if (ext == "rds") "rds" else "rdata"))
  }
  stop(sprintf("unsupported file type '%s': %s (expected .png, .jpg, .jpeg, .rds or .RData)",
               if (nzchar(ext)) ext else "(no extension)", input_path), call. = FALSE)
}

# Standalone: Rscript process_file.r --input FILE --output-dir DIR [extra args]
if (sys.nframe() == 0L) {
  cli <- commandArgs(trailingOnly = TRUE)
  input <- option_value(cli, "--input", NA)
  output_dir <- option_value(cli, "--output-dir", NA)
  if (is.na(input) || is.na(output_dir)) {
    stop("usage: Rscript process_file.r --input FILE --output-dir DIR [extra args]")
  }
  extra <- cli[-c(match("--input", cli) + 0:1, match("--output-dir", cli) + 0:1)]
  dir.create(output_dir, showWarnings = FALSE, recursive = TRUE)
  result <- process_file(input, output_dir, extra)
  cat(jsonlite::toJSON(result, auto_unbox = TRUE), "\n")
}
