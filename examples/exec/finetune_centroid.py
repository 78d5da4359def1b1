#!/usr/bin/env python3
"""A worked example of the exec protocol's `finetune` operation (docs/runners.md "exec:
fine-tuning"): "fine-tunes" a nearest-class-centroid classifier on the raw examples. Pure
Python 3 (no numpy), so that it runs anywhere; a real model would train its network here.

rankql runs the model's command with RANKQL_OP=finetune and
    RANKQL_INPUT_DIR/request.json   {"op": "finetune", "train": "train", "test": "test",
                                     "knobs": {...}, "model": {...}, "num_classes": c, ...}
    RANKQL_INPUT_DIR/train/         input.npy, labels.npy, request.json (as an embed job's)
    RANKQL_INPUT_DIR/test/          the same for the test rows
It writes RANKQL_OUTPUT ({"test_accuracy": a, "train_accuracy": b}, fractions) and may write
RANKQL_WEIGHTS (here: the centroids as JSON), which rankql keeps for the new model.

Knobs are read from request.json (lr, epochs, batch_size, seed, holdout); a centroid
classifier has nothing to tune, so it only echoes them. Options, for trying the checks:
    --fail MSG   print MSG on stderr and exit 3 (the job fails with MSG)
"""
import array
import ast
import json
import os
import struct
import sys

DTYPES = {"|u1": "B", "<u1": "B", "<i4": "i", "<f4": "f", "<f8": "d"}


def read_npy(path):
    """(shape, flat array, descr) of a little-endian C-order NPY file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not an NPY file")
    if data[6] == 1:
        (hlen,) = struct.unpack_from("<H", data, 8)
        off = 10
    else:
        (hlen,) = struct.unpack_from("<I", data, 8)
        off = 12
    header = ast.literal_eval(data[off:off + hlen].decode("latin1"))
    code = DTYPES.get(header["descr"])
    if code is None or header["fortran_order"]:
        raise ValueError(f"{path}: unsupported dtype or order {header}")
    values = array.array(code)
    values.frombytes(data[off + hlen:])
    if sys.byteorder != "little":
        values.byteswap()
    return tuple(header["shape"]), values, header["descr"]


def load(directory):
    """Rows (lists of floats, uint8 scaled to [0, 1]) and labels of one side."""
    shape, values, descr = read_npy(os.path.join(directory, "input.npy"))
    n = shape[0]
    per = 1
    for s in shape[1:]:
        per *= s
    scale = 1 / 255 if descr.endswith("u1") else 1.0
    rows = [[v * scale for v in values[i * per:(i + 1) * per]] for i in range(n)]
    _, labels, _ = read_npy(os.path.join(directory, "labels.npy"))
    return rows, list(labels)


def predict(centroids, row):
    """The class of the nearest centroid (ties: the lowest class)."""
    best, best_d = -1, None
    for c, mu in enumerate(centroids):
        if mu is None:
            continue
        d = sum((a - b) * (a - b) for a, b in zip(row, mu))
        if best_d is None or d < best_d:
            best, best_d = c, d
    return best


def accuracy(centroids, rows, labels):
    if not rows:
        return 0.0
    return sum(predict(centroids, r) == y for r, y in zip(rows, labels)) / len(rows)


def main():
    if "--fail" in sys.argv:
        print(sys.argv[sys.argv.index("--fail") + 1], file=sys.stderr)
        return 3
    if os.environ.get("RANKQL_OP") != "finetune":
        print("finetune_centroid.py only fine-tunes (RANKQL_OP=finetune)", file=sys.stderr)
        return 2
    d = os.environ["RANKQL_INPUT_DIR"]
    with open(os.environ["RANKQL_REQUEST"]) as f:
        req = json.load(f)
    train_x, train_y = load(os.path.join(d, req["train"]))
    test_x, test_y = load(os.path.join(d, req["test"]))
    c = req["num_classes"]
    sums = [None] * c
    counts = [0] * c
    for row, y in zip(train_x, train_y):
        if sums[y] is None:
            sums[y] = [0.0] * len(row)
        sums[y] = [a + b for a, b in zip(sums[y], row)]
        counts[y] += 1
    centroids = [None if s is None else [v / counts[k] for v in s] for k, s in enumerate(sums)]
    result = {"test_accuracy": accuracy(centroids, test_x, test_y),
              "train_accuracy": accuracy(centroids, train_x, train_y),
              "knobs": req["knobs"]}
    with open(os.environ["RANKQL_WEIGHTS"], "w") as f:
        json.dump({"centroids": centroids}, f)
    with open(os.environ["RANKQL_OUTPUT"], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
