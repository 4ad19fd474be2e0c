# A table's partition for the R session (session.R sources this file, beside it): the data.frame R hands
# process_partition(), read from the CSV that compute/tables.py writes, and the partition's keys.

# A partition's data.frame, from the CSV compute/tables.py wrote: each column read as the class it had there
# (integer, numeric, logical, character, Date, POSIXct), a missing value written as table$na, names kept as they are.
read_partition <- function(input, table) {
  classes <- unlist(table$classes, use.names = FALSE)
  read_as <- ifelse(classes %in% c("Date", "POSIXct"), "character", classes)
  names <- enc2utf8(unlist(table$names, use.names = FALSE))
  if (isTRUE(file.size(input) == 0)) {  # no rows: read.csv reads no columns from an empty file
    data <- as.data.frame(stats::setNames(lapply(read_as, function(cls) vector(cls, 0L)), names),
                          check.names = FALSE, stringsAsFactors = FALSE)
  } else {
    data <- utils::read.csv(input, header = FALSE, colClasses = read_as, col.names = names, na.strings = table$na,
                            check.names = FALSE, stringsAsFactors = FALSE, encoding = "UTF-8", strip.white = FALSE)
  }
  # R's reader ends a line at a carriage return even inside quotes: the CSV holds a mark for it, put back here
  for (i in which(classes == "character")) data[[i]] <- gsub(table$cr, "\r", data[[i]], fixed = TRUE)
  for (i in which(classes == "Date")) data[[i]] <- as.Date(data[[i]])
  for (i in which(classes == "POSIXct")) data[[i]] <- as.POSIXct(data[[i]], tz = "UTC", format = "%Y-%m-%dT%H:%M:%OS")
  data
}

# A partition's keys as a named list (NA for a missing value), an empty named list without partition keys.
partition_keys <- function(keys) {
  if (is.null(keys) || length(keys) == 0L) return(structure(list(), names = character(0)))
  lapply(keys, function(value) if (is.null(value)) NA else value)
}
