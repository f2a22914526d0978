"""Splits digits_train.csv into four shards of 300 rows (file order), same columns and header,
for examples/softmax_digits.opt (one box per shard). Python 3, standard library only:
`python3 make_softmax_shards.py`, run in this folder. The one-hot columns y0..y9 are those of
digits_train.csv (made by make_data.py)."""

SHARDS = 4

with open("digits_train.csv") as f:
    header, *rows = f.read().splitlines()
size = len(rows) // SHARDS
assert size * SHARDS == len(rows)
for s in range(SHARDS):
    with open(f"digits_train_{s}.csv", "w") as out:
        out.write("\n".join([header, *rows[s * size:(s + 1) * size]]) + "\n")
