"""Sample input files for demos, tests and benchmarks: PNGs written in pure Python, and JPEG, .rds and
.RData files written by R (no shell involved); or a table (``--oj-sales``): orange juice sales per store and brand,
partitioned with an MLTable file."""

from __future__ import annotations

import math
import os
import random
import struct
import subprocess
import zlib

# The R part takes exactly the three absolute target paths, named as below, and refuses anything else:
# run by hand with an extra ``--args`` it once wrote a JPEG named "--args" into the working directory.
R_SAMPLE_NAMES = ("photo.jpg", "table.rds", "tables.RData")
R_WRITE_SAMPLES = r"""
args <- commandArgs(trailingOnly = TRUE)
expected <- c("photo.jpg", "table.rds", "tables.RData")
if (length(args) != 3L || !identical(basename(args), expected) || !all(startsWith(args, "/"))) {
  stop("expected three absolute paths ending in ", paste(expected, collapse = ", "), "; got: ",
       paste(sQuote(args, FALSE), collapse = " "), call. = FALSE)
}
set.seed(42)
jpeg::writeJPEG(array(runif(48 * 64 * 3), c(48, 64, 3)), args[[1]])
saveRDS(data.frame(id = 1:20, value = rnorm(20), group = rep(c("a", "b"), 10)), args[[2]])
measurements <- data.frame(sensor = rep(c("s1", "s2"), 5), reading = c(rnorm(9), NA))
calibration <- data.frame(sensor = c("s1", "s2"), offset = c(0.1, -0.2))
save(measurements, calibration, file = args[[3]])
"""


def png_bytes(width: int, height: int, *, seed: int = 0, channels: int = 3) -> bytes:
    """Return an 8-bit PNG image of random pixels.

    :param width: pixels per row.
    :param height: rows.
    :param seed: makes the pixels reproducible.
    :param channels: 1 (gray), 3 (RGB) or 4 (RGBA).
    """
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rng = random.Random(seed)
    row_bytes = width * channels
    raw = b"".join(b"\x00" + rng.randbytes(row_bytes) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_png(path: str, width: int = 64, height: int = 64, *, seed: int = 0, channels: int = 3) -> str:
    """Write a random PNG to ``path`` (folders created) and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(png_bytes(width, height, seed=seed, channels=channels))
    return path


def write_r_samples(folder: str, rscript: str = "Rscript") -> list[str]:
    """Write ``photo.jpg``, ``table.rds`` and ``tables.RData`` into ``folder`` with R; return their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(os.path.abspath(folder), name) for name in R_SAMPLE_NAMES]
    done = subprocess.run([rscript, "--vanilla", "-e", R_WRITE_SAMPLES, *paths], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"R could not write the sample files into {folder}: {done.stderr.strip()}")
    return paths


def make_sample_inputs(folder: str, *, images: int = 24, corrupt: bool = True, rscript: str = "Rscript") -> list[str]:
    """Fill ``folder`` with a realistic mix of inputs and return their paths.

    PNGs in two camera folders (same basenames in both), a grayscale PNG, R-written JPEG/.rds/.RData files,
    and, with ``corrupt``, one file that is not a PNG despite its name (it fails alone).

    :param folder: the dataset folder for one date.
    :param images: how many PNGs.
    :param corrupt: add one corrupt image.
    :param rscript: the Rscript used to write the R formats.
    """
    paths = [
        write_png(os.path.join(folder, f"camera-{'ab'[i % 2]}", f"img_{i // 2:04d}.png"), 64, 48, seed=i)
        for i in range(images)
    ]
    paths.append(write_png(os.path.join(folder, "gray scan.png"), 32, 32, seed=99, channels=1))
    paths.extend(write_r_samples(os.path.join(folder, "tables"), rscript))
    if corrupt:
        bad = os.path.join(folder, "camera-b", "broken.png")
        os.makedirs(os.path.dirname(bad), exist_ok=True)  # with fewer than 2 images camera-b has no PNG yet
        with open(bad, "wb") as handle:
            handle.write(b"this is not a PNG file\n")
        paths.append(bad)
    return paths


OJ_BRANDS = ("dominicks", "minute.maid", "tropicana")
OJ_COLUMNS = ("WeekStarting", "Quantity", "Advert", "Price", "Revenue")  # Store and Brand are in the folder names
# The MLTable Microsoft's partition sample writes (azureml-examples cli/jobs/parallel/1a_oj_sales_prediction,
# partition_data.py): every CSV below, Store and Brand put back from the folder names, the path columns dropped.
OJ_MLTABLE = """paths:
- pattern: ./**/*.csv
transformations:
- read_delimited:
    delimiter: ','
    empty_as_string: false
    encoding: ascii
    header: all_files_same_headers
    include_path_column: true
- extract_columns_from_partition_format:
    partition_format: '{Store}/{Brand}/{file_name}.{extension}'
- drop_columns:
  - Path
  - file_name
  - extension
type: mltable
"""


def make_oj_sales_table(folder: str, *, stores: int = 4, weeks: int = 60, seed: int = 7) -> list[str]:
    """Write a table shaped like Microsoft's orange juice sales sample (weekly ``Quantity``, ``Advert``, ``Price``,
    ``Revenue`` per store and brand) into ``folder``, partitioned as Microsoft's partition sample writes it:
    ``<Store>/<Brand>/partitioned_data.csv`` and an ``MLTable`` file that puts ``Store`` and ``Brand`` back from the
    folder names. The last store's ``tropicana`` has 3 weeks only, too few to fit a model: its partition fails alone
    in the per-store forecast (``include/r/forecast_per_store.r``). Returns the CSV files' paths.

    :param folder: the table's folder (its ``MLTable`` file goes there).
    :param stores: how many stores (numbered from 1000, as in the sample), each with 3 brands.
    :param weeks: weeks of sales per store and brand, from 1990-06-14.
    :param seed: makes the numbers reproducible.
    """
    import csv
    import datetime

    rng = random.Random(seed)
    first = datetime.date(1990, 6, 14)
    paths = []
    for s in range(stores):
        store = 1000 + 2 * s
        for b, brand in enumerate(OJ_BRANDS):
            rows = 3 if (s == stores - 1 and brand == "tropicana") else weeks
            base, elasticity = rng.uniform(8000, 16000), rng.uniform(2.0, 3.5)
            path = os.path.join(folder, str(store), brand, "partitioned_data.csv")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", newline="", encoding="ascii") as handle:
                writer = csv.writer(handle)
                writer.writerow(OJ_COLUMNS)
                for week in range(rows):
                    advert = int(rng.random() < 0.4)
                    price = round(rng.uniform(1.8, 3.0) + 0.2 * b, 2)
                    seasonal = 1 + 0.15 * math.sin(2 * math.pi * week / 52)
                    quantity = int(
                        base
                        * seasonal
                        * (price / 2.5) ** -elasticity
                        * (1.3 if advert else 1.0)
                        * rng.uniform(0.9, 1.1)
                    )
                    day = first + datetime.timedelta(weeks=week)
                    writer.writerow([day.isoformat(), quantity, advert, price, round(quantity * price, 2)])
            paths.append(path)
    with open(os.path.join(folder, "MLTable"), "w", encoding="utf-8") as handle:
        handle.write(OJ_MLTABLE)
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m azureml_parallel_r.examples.samples", description=make_sample_inputs.__doc__
    )
    parser.add_argument("folder", help="where to write the sample inputs")
    parser.add_argument("--images", type=int, default=24, help="how many PNGs (default 24)")
    parser.add_argument("--no-corrupt", action="store_true", help="leave out the deliberately corrupt image")
    parser.add_argument(
        "--oj-sales",
        action="store_true",
        help="write a table instead: orange juice sales per store and brand, partitioned with an MLTable file as "
        "Microsoft's partition sample writes it (for include/r/forecast_per_store.r)",
    )
    parser.add_argument("--stores", type=int, default=4, help="with --oj-sales: how many stores (default 4)")
    args = parser.parse_args(argv)
    if args.oj_sales:
        paths = make_oj_sales_table(args.folder, stores=args.stores)
        print(f"wrote an orange juice sales table of {len(paths)} partitions (Store, Brand) under {args.folder}")
        return 0
    paths = make_sample_inputs(args.folder, images=args.images, corrupt=not args.no_corrupt)
    print(f"wrote {len(paths)} sample inputs under {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
