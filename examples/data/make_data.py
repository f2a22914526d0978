#!/usr/bin/env python3
"""Makes the example data files in this folder from the two source tables.

Usage: python3 make_data.py DIABETES.csv DIGITS.csv   (Python 3 standard library only)

diabetes_0.csv, diabetes_1.csv (least_squares.opt):
    The ten features (age, sex, bmi, bp, s1..s6) and the target of diabetes.csv, each
    standardised over all 442 rows: (value - mean) / sd, sd the population standard
    deviation (divide by n). Rows 0..220 go to shard 0, rows 221..441 to shard 1, in file
    order. Numbers are written with 10 significant digits.

digits_train.csv, digits_test.csv (multitask_digits.opt, tests/examples_golden.rs):
    A fixed split of digits.csv in file order: the first 1200 rows train, the other 597 test.
    Columns: p0..p63 (pixel / 16, so in [0, 1]), y0..y9 (1 if the row's digit is k, else 0:
    the ten one-vs-rest tasks), label (the digit).
"""
import csv
import sys


def number(x):
    text = f"{x:.10g}"
    return "0" if text == "-0" else text


def diabetes(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], [[float(c) for c in r] for r in rows[1:] if r]
    n, cols = len(rows), len(header)
    means = [sum(r[c] for r in rows) / n for c in range(cols)]
    sds = [(sum((r[c] - means[c]) ** 2 for r in rows) / n) ** 0.5 for c in range(cols)]
    scaled = [[(r[c] - means[c]) / sds[c] for c in range(cols)] for r in rows]
    half = n // 2
    for shard, part in enumerate([scaled[:half], scaled[half:]]):
        with open(f"diabetes_{shard}.csv", "w", newline="") as f:
            f.write(",".join(header) + "\n")
            for r in part:
                f.write(",".join(number(x) for x in r) + "\n")


def digits(path, train_rows=1200):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [[int(c) for c in r] for r in rows[1:] if r]
    header = [f"p{i}" for i in range(64)] + [f"y{k}" for k in range(10)] + ["label"]
    for name, part in [("train", rows[:train_rows]), ("test", rows[train_rows:])]:
        with open(f"digits_{name}.csv", "w", newline="") as f:
            f.write(",".join(header) + "\n")
            for r in part:
                pixels = [number(p / 16) for p in r[:64]]
                onehot = ["1" if r[64] == k else "0" for k in range(10)]
                f.write(",".join(pixels + onehot + [str(r[64])]) + "\n")


if __name__ == "__main__":
    diabetes(sys.argv[1])
    digits(sys.argv[2])
