# The limit: one Rscript that sources the script once and loops over the files itself.
# Rscript pure_loop.R SCRIPT OUTPUT_DIR FILE_LIST [args for process_file...]
argv <- commandArgs(trailingOnly = TRUE)
source(argv[[1]])
files <- readLines(argv[[3]], encoding = "UTF-8")
extra <- argv[-(1:3)]
for (i in seq_along(files)) {
  out <- file.path(argv[[2]], i)
  dir.create(out, recursive = TRUE)
  process_file(files[[i]], out, extra)
}
