# Example R script for azureml-parallel-r over a table: one model per partition (a store and a brand), in base R.
#
# Contract: define process_partition(data, keys, output_dir, args). data is a data.frame holding every row of one
# partition (all the weeks of one store and brand, with partition keys Store,Brand), keys a named list of the
# partition's key values (keys$Store, keys$Brand; empty without partition keys). It writes its results into
# output_dir (a private scratch folder, moved to results/Store=<store>/Brand=<brand>/ only when it succeeds) and may
# return a small list that becomes part of the partition's result row. An R error fails that partition alone.
#
# The model: log(Quantity) on log(Price), Advert and a yearly season (sin and cos of the week), fitted with lm() on
# all but the last --holdout weeks (default 8), which measure its error; then a forecast of the next --horizon weeks
# (default 8) at the last price without advertising.
#
#   forecast.csv   WeekStarting, Quantity (forecast), lower, upper (95% prediction interval)
#   model.csv      the coefficients
#
# Columns expected (Microsoft's orange juice sales sample): WeekStarting (Date), Quantity, Advert, Price.
# Sample data: python -m azureml_parallel_r.examples.samples DIR --oj-sales

option_value <- function(args, name, default) {
  at <- match(name, args)
  if (is.na(at)) return(default)
  if (at == length(args)) stop(sprintf("option %s needs a value", name))
  args[[at + 1L]]
}

whole_number <- function(args, name, default) {
  value <- suppressWarnings(as.integer(option_value(args, name, default)))
  if (is.na(value) || value < 1L) stop(sprintf("%s must be a positive whole number", name))
  value
}

season <- function(week) data.frame(sin52 = sin(2 * pi * week / 52), cos52 = cos(2 * pi * week / 52))

process_partition <- function(data, keys, output_dir, args = character(0)) {
  needed <- c("WeekStarting", "Quantity", "Advert", "Price")
  missing <- setdiff(needed, names(data))
  if (length(missing)) stop("the partition has no column ", paste(missing, collapse = ", "), call. = FALSE)
  horizon <- whole_number(args, "--horizon", "8")
  holdout <- whole_number(args, "--holdout", "8")
  data$WeekStarting <- as.Date(data$WeekStarting)  # a Date from a table; text (ISO dates) from a CSV read as text
  data <- data[order(data$WeekStarting), ]
  if (nrow(data) < holdout + 12L) {
    stop(sprintf("%s has %d weeks: at least %d are needed to fit and check a model", partition_name(keys),
                 nrow(data), holdout + 12L), call. = FALSE)
  }
  data$week <- seq_len(nrow(data))
  frame <- cbind(data, season(data$week))
  formula <- log(Quantity) ~ log(Price) + Advert + sin52 + cos52
  train <- frame[seq_len(nrow(frame) - holdout), ]
  test <- frame[nrow(frame) - holdout + seq_len(holdout), ]
  checked <- stats::lm(formula, data = train)
  error <- exp(stats::predict(checked, test)) - test$Quantity
  model <- stats::lm(formula, data = frame)

  future_weeks <- nrow(frame) + seq_len(horizon)
  future <- cbind(data.frame(Price = data$Price[[nrow(data)]], Advert = 0L), season(future_weeks))
  predicted <- stats::predict(model, future, interval = "prediction")
  last <- max(data$WeekStarting)
  forecast <- data.frame(WeekStarting = last + 7L * seq_len(horizon), Quantity = round(exp(predicted[, "fit"])),
                         lower = round(exp(predicted[, "lwr"])), upper = round(exp(predicted[, "upr"])))
  utils::write.csv(forecast, file.path(output_dir, "forecast.csv"), row.names = FALSE)
  coefficients <- stats::coef(model)
  utils::write.csv(data.frame(term = names(coefficients), estimate = unname(coefficients)),
                   file.path(output_dir, "model.csv"), row.names = FALSE)
  list(weeks = nrow(data), holdout_mape = round(mean(abs(error) / test$Quantity), 4),
       price_elasticity = round(unname(coefficients[["log(Price)"]]), 3),
       next_week = forecast$Quantity[[1L]])
}

partition_name <- function(keys) {
  if (length(keys) == 0L) return("this mini-batch")
  paste(sprintf("%s=%s", names(keys), unlist(keys)), collapse = ", ")
}
