# Benchmark R script: read a PNG, compute a little, write one small output file.
# --work N adds N rounds of CPU-bound linear algebra per file (for the process-scaling measurement).
process_file <- function(input_path, output_dir, args) {
  pixels <- png::readPNG(input_path)
  at <- match("--work", args)
  work <- if (is.na(at)) 0L else as.integer(args[[at + 1L]])
  score <- mean(pixels)
  for (i in seq_len(work)) score <- score + sum(svd(pixels[, , 1L] + i)$d) * 1e-9
  writeLines(format(score, digits = 8), file.path(output_dir, "score.txt"))
  score
}
