#!/usr/bin/env python3
"""A worked example of rankql's `exec` model runner (docs/runners.md): summary statistics of
each example as its "embedding". Pure Python 3 (no numpy) so that it runs anywhere.

rankql runs it as, e.g.,
    REGISTER MODEL "example/mean" (runner, modality, spec)
      VALUES ('exec', 'image', {command: ["python3", "examples/exec/embed_mean.py"]});
and sets RANKQL_INPUT_DIR (input.npy or input.txt, labels.npy, request.json) and
RANKQL_OUTPUT (where the float32 (n, d) NPY file must be written).

Features of one example (its values flattened; uint8 pixels scaled to [0, 1]):
    mean, standard deviation (population), min, 25% quantile, median, 75% quantile, max
quantiles interpolated linearly between order statistics (numpy's default). For texts:
    length in characters, number of words, mean word length, fraction of letters,
    fraction of digits, fraction of upper-case letters, fraction of spaces.

Options (for trying the protocol's checks):
    --limit N   embed only the first N examples (rankql rejects the wrong row count)
    --scale X   multiply every feature by X
"""
import array
import ast
import json
import math
import os
import struct
import sys

DTYPES = {"|u1": "B", "<u1": "B", "|i1": "b", "<i2": "h", "<u2": "H", "<i4": "i", "<u4": "I",
          "<i8": "q", "<u8": "Q", "<f4": "f", "<f8": "d"}


def read_npy(path):
    """(shape, flat list of numbers, descr) of a little-endian C-order NPY file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not an NPY file")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", data, 8)
        off = 10
    else:
        (hlen,) = struct.unpack_from("<I", data, 8)
        off = 12
    header = ast.literal_eval(data[off:off + hlen].decode("latin1"))
    if header["fortran_order"]:
        raise ValueError(f"{path}: Fortran order is not supported")
    code = DTYPES.get(header["descr"])
    if code is None:
        raise ValueError(f"{path}: unsupported dtype {header['descr']}")
    values = array.array(code)
    values.frombytes(data[off + hlen:])
    if sys.byteorder != "little":
        values.byteswap()
    return tuple(header["shape"]), values, header["descr"]


def write_npy(path, rows):
    """A float32 (n, d) C-order NPY file from a list of equal-length lists."""
    n = len(rows)
    d = len(rows[0]) if rows else 0
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, d)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    out = array.array("f", [v for row in rows for v in row])
    if sys.byteorder != "little":
        out.byteswap()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(out.tobytes())
    os.replace(tmp, path)


def quantile(s, p):
    pos = p * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats(values):
    m = len(values)
    mean = math.fsum(values) / m
    var = math.fsum((v - mean) ** 2 for v in values) / m
    s = sorted(values)
    return [mean, math.sqrt(var), s[0], quantile(s, 0.25), quantile(s, 0.5), quantile(s, 0.75),
            s[-1]]


def text_features(t):
    words = t.split()
    n = max(len(t), 1)
    return [len(t), len(words), sum(len(w) for w in words) / max(len(words), 1),
            sum(c.isalpha() for c in t) / n, sum(c.isdigit() for c in t) / n,
            sum(c.isupper() for c in t) / n, t.count(" ") / n]


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(line[i + 1], line[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def main(argv):
    limit, scale = None, 1.0
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--limit":
            limit = int(args.pop(0))
        elif a == "--scale":
            scale = float(args.pop(0))
        else:
            print(f"embed_mean.py: unknown option {a}", file=sys.stderr)
            return 2
    indir = os.environ["RANKQL_INPUT_DIR"]
    output = os.environ["RANKQL_OUTPUT"]
    with open(os.path.join(indir, "request.json")) as f:
        request = json.load(f)
    n = request["n"]
    rows = []
    if request["kind"] == "texts":
        with open(os.path.join(indir, "input.txt"), encoding="utf-8") as f:
            texts = [unescape(line.rstrip("\n")) for line in f]
        rows = [text_features(t) for t in texts]
    else:
        shape, values, descr = read_npy(os.path.join(indir, "input.npy"))
        per = 1
        for s in shape[1:]:
            per *= s
        div = 255.0 if descr in ("|u1", "<u1") else 1.0
        for i in range(shape[0]):
            rows.append(stats([v / div for v in values[i * per:(i + 1) * per]]))
    if len(rows) != n:
        print(f"embed_mean.py: read {len(rows)} examples, request.json says {n}", file=sys.stderr)
        return 1
    if limit is not None:
        rows = rows[:limit]
    rows = [[v * scale for v in row] for row in rows]
    write_npy(output, rows)
    print(f"embed_mean.py: {len(rows)} examples embedded for model "
          f"{request['model'].get('name')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
