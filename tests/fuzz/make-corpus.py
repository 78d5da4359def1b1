#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_datasets and fuzz_http_body (tests/fuzz/corpus/datasets/
and tests/fuzz/corpus/http/): small valid (and near-valid) inputs in the layout those
targets read (see the top of tests/fuzz/fuzz_datasets.c and fuzz_http_body.c). Standard
library only (PNG and JPEG are encoded here by hand), deterministic: rerunning it rewrites
the same bytes. Usage: tests/fuzz/make-corpus.py"""
import gzip
import io
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"#LABELS#"

# fuzz_datasets variants (the order of variants[] in fuzz_datasets.c)
IDX, IDX_LABELS, IDX_AUTO, IDX_AUTO_GZ = 0, 1, 2, 3
CSV_A, CSV_B, CSV_C, CSV_D, CSV_E, CSV_F = 4, 5, 6, 7, 8, 9
NPY, NPY_LABELS, NPZ, NPZ_KEYS = 10, 11, 12, 13
TEXT, TEXT_TAB, TEXT_LABELS = 14, 15, 16
PNG_DIR, JPG_DIR, MIX_DIR = 17, 18, 19


def idx(dtype_code, shape, payload):
    return struct.pack(">BBBB", 0, 0, dtype_code, len(shape)) + b"".join(
        struct.pack(">I", d) for d in shape) + payload


def gz(b):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(b)
    return out.getvalue()


def npy(descr, shape, payload, version=1):
    shape_s = "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")" if len(shape) != 1 \
        else f"({shape[0]},)"
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}"
    hl = 4 if version >= 2 else 2
    pad = (64 - (6 + 2 + hl + len(header) + 1) % 64) % 64
    header = header + " " * pad + "\n"
    lenfield = struct.pack("<I" if version >= 2 else "<H", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + lenfield + header.encode() + payload


def npz(members, deflate):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            z.writestr(info, data)
    return out.getvalue()


def png(w, h, color_type, pixels):
    """color_type 0 gray, 2 RGB, 6 RGBA; pixels: bytes of h rows."""
    ch = {0: 1, 2: 3, 6: 4}[color_type]
    raw = b"".join(b"\x00" + pixels[y * w * ch:(y + 1) * w * ch] for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def jpeg(w, h, ncomp):
    """A baseline JPEG of w×h (multiples of 8) in one flat gray: every block is DC 0 and
    EOB, with one-code Huffman tables (both codes "0")."""
    def seg(marker, d):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(d) + 2) + d
    out = b"\xff\xd8"
    out += seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    out += seg(0xDB, b"\x00" + bytes([1] * 64))
    comps = b"".join(bytes([i + 1, 0x11, 0]) for i in range(ncomp))
    out += seg(0xC0, struct.pack(">BHHB", 8, h, w, ncomp) + comps)
    counts = bytes([1] + [0] * 15)
    out += seg(0xC4, b"\x00" + counts + b"\x00")  # DC table 0: category 0 → "0"
    out += seg(0xC4, b"\x10" + counts + b"\x00")  # AC table 0: EOB → "0"
    out += seg(0xDA, bytes([ncomp]) + b"".join(bytes([i + 1, 0x00]) for i in range(ncomp))
               + b"\x00\x3f\x00")
    nbits = (w // 8) * (h // 8) * ncomp * 2
    nbytes = (nbits + 7) // 8
    bits = "0" * nbits + "1" * (nbytes * 8 - nbits)
    out += bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    return out + b"\xff\xd9"


def write(folder, name, data):
    path = os.path.join(HERE, "corpus", folder, name)
    with open(path, "wb") as f:
        f.write(data)
    assert len(data) < 4096, (name, len(data))


def ds(name, variant, opt, content):
    write("datasets", name, bytes([variant, opt]) + content)


def datasets():
    images = idx(0x08, [3, 2, 2], bytes(range(12)))
    labels = idx(0x08, [3], b"\x00\x01\x02")
    ds("idx_images", IDX, 0, images)
    ds("idx_images4", IDX, 0, idx(0x08, [2, 2, 2, 3], bytes(range(24))))
    ds("idx_labels", IDX_LABELS, 0, images + SEP + labels)
    ds("idx_labels_slice", IDX_LABELS, 0x02 | 0x10, images + SEP + gz(labels))
    ds("idx_auto", IDX_AUTO, 0x0C, images + SEP + labels)
    ds("idx_gz_auto", IDX_AUTO_GZ, 0x01, gz(images) + SEP + gz(labels))
    ds("idx_gz", IDX_AUTO_GZ, 0x80, gz(images))

    ds("csv_auto_header", CSV_A, 0x80, b"a,b,label\n1,2,0\n3.5,-4e2,1\n")
    ds("csv_auto_noheader", CSV_A, 0, b"1,2,cat\r\n3,4,dog\r\n\r\n5,6,cat\r\n")
    ds("csv_quoted", CSV_A, 0x03, b'"x","y","label"\n"1",2,"a ""b"""\n3,"4",c\n')
    ds("csv_by_name", CSV_B, 0x80, b"label,f1,f2\n2,0.5,0.25\n0,1,2\n1,3,4\n")
    ds("csv_index0_semicolon", CSV_C, 0x08, b"1;0.1;0.2\n2;0.3;0.4\n0;0.5;0.6\n")
    ds("csv_tab_skip", CSV_D, 0x00, b"3\t2\tn\nf1\ty\tf2\n1\t0\t2\n3\t1\t4\n5\t2\t6\n")
    ds("csv_labels_only", CSV_D, 0x10, b"skip\ny\tz\n1\t0\n0\t1\n")
    ds("csv_pipe_skip2", CSV_E, 0x00, b"# x\n# y\na|y|b\n1|one|2\n3|two|4\n")
    ds("csv_noheader_col2", CSV_F, 0x04, b"1,2,0\n3,4,1\n5,6,2\n")

    feats = npy("<f4", [3, 2], struct.pack("<6f", 0, 1, 2, 3, 4, 5))
    ds("npy_f4", NPY, 0x80, feats)
    ds("npy_f8_v2", NPY, 0, npy("<f8", [2, 3], struct.pack("<6d", *range(6)), version=2))
    ds("npy_be_i2_v3", NPY, 0, npy(">i2", [4], struct.pack(">4h", 1, -2, 3, 4), version=3))
    ds("npy_u1_images", NPY, 0, npy("|u1", [2, 2, 2], bytes(range(8))))
    ds("npy_images_rgb", NPY, 0x01, npy("<f4", [1, 2, 2, 3], struct.pack("<12f", *[0.5] * 12)))
    ds("npy_bool", NPY, 0, npy("|b1", [2, 2], b"\x00\x01\x01\x00"))
    ds("npy_labels", NPY_LABELS, 0, feats + SEP + npy("<i8", [3], struct.pack("<3q", 0, 1, 1)))
    ds("npy_labels_f8", NPY_LABELS, 0x1C, feats + SEP + npy("<f8", [3, 1], struct.pack("<3d", 2, 0, 1)))
    ds("npy_labels_only", NPY_LABELS, 0x10, npy("<f4", [3, 0], b"") + SEP
       + npy("<u2", [3], struct.pack("<3H", 0, 1, 2)))

    y = npy("<i4", [3], struct.pack("<3i", 1, 0, 1))
    ds("npz_stored", NPZ, 0x80, npz([("features.npy", feats), ("labels.npy", y)], False))
    ds("npz_deflate", NPZ, 0, npz([("x.npy", feats), ("y.npy", y)], True))
    ds("npz_unlabelled", NPZ, 0, npz([("X.npy", feats)], True))
    ds("npz_keys", NPZ_KEYS, 0x02, npz([("f.npy", feats), ("l.npy", y)], False))

    ds("text_plain", TEXT, 0, b"hello world\nsecond line\r\nthird\n")
    ds("text_tab", TEXT_TAB, 0x80, b"pos\tgood movie\nneg\tbad film\npos\tgreat\n")
    ds("text_tab_int", TEXT_TAB, 0x0C, b"1\tone\n0\tzero\n2\ttwo")
    ds("text_labels", TEXT_LABELS, 0x10, b"a\nb\nc\n" + SEP + b"x\ny\nx\n")

    gray = png(4, 4, 0, bytes(range(0, 160, 10)))
    rgb = png(4, 4, 2, bytes(range(48)))
    rgba = png(4, 4, 6, bytes(range(64)))
    ds("png_gray", PNG_DIR, 0, gray)
    ds("png_two_classes", PNG_DIR, 0x80, gray + SEP + rgb)
    ds("png_rgb_as_gray", PNG_DIR, 0x20, rgb + SEP + rgba)
    ds("png_rgba_rgb", PNG_DIR, 0x40, rgba)
    ds("jpg_gray", JPG_DIR, 0, jpeg(8, 8, 1))
    ds("jpg_two_classes", JPG_DIR, 0x80, jpeg(16, 8, 3) + SEP + jpeg(16, 8, 1))
    ds("jpg_color_as_gray", JPG_DIR, 0x20, jpeg(8, 8, 3))
    ds("mix_png_jpg", MIX_DIR, 0, png(8, 8, 0, bytes(64)) + SEP + jpeg(8, 8, 1))


def http():
    # mode 0: POST /v1/query bodies
    q = {
        "query_simple": b'{"query": "SHOW MODELS;"}',
        "query_all_fields": b'{"query": "SELECT * FROM models LIMIT 3;", "session": '
                            b'"7f6c0e9a-3b1d-4c2e-9f00-1a2b3c4d5e6f", "stream": true, "dry": false}',
        "query_null_session": b'{"session": null, "query": "RANK MODELS FOR d BY knn;\\nWAIT;"}',
        "query_escapes": b'{"query": "SELECT \\"x\\" FROM \\u00e9t\\u00e9 \\ud83d\\ude00;"}',
        "query_unknown_field": b'{"query": "x;", "extra": 1}',
        "query_wrong_type": b'{"query": 5}',
        "query_duplicate": b'{"query": "a;", "query": "b;"}',
        "query_array": b'["query"]',
        "query_empty": b'',
        "query_bad_utf8": b'{"query": "\xff\xfe"}',
        "query_truncated": b'{"query": "SELECT',
        "query_stream_string": b'{"query": "x;", "stream": "yes"}',
        "query_nul": b'{"query": "a\\u0000b;"}',
        "query_deep": b'{"query": "x;", "dry": ' + b'[' * 40 + b']' * 40 + b'}',
    }
    for name, body in q.items():
        write("http", name, b"\x00" + body)
    # mode 1: Content-Type \n POST /v1/sessions body
    for name, b in {"sessions_empty": b"application/json\n",
                    "sessions_object": b"application/json; charset=utf-8\n{}",
                    "sessions_field": b"application/json\n{\"x\": 1}",
                    "sessions_text": b"text/plain\n{}",
                    "sessions_no_type": b"{}"}.items():
        write("http", name, b"\x01" + b)
    # mode 2: Authorization values
    for name, b in {"auth_ok": b"Bearer 0123456789abcdef",
                    "auth_tabs": b"  bearer\t\ts3cr3t-T0ken-for-fuzzing_0123456789 \t",
                    "auth_prefix": b"Bearer 0123456789abcde",
                    "auth_basic": b"Basic dXNlcjpwYXNz",
                    "auth_empty_token": b"Bearer   "}.items():
        write("http", name, b"\x02" + b)
    # mode 3: token files
    for name, b in {"tokens_ok": b"# comment\n\n  abcdefghijklmnop  \r\nQRSTUVWXYZ012345678\n",
                    "tokens_short": b"short\n",
                    "tokens_space": b"abcdefgh ijklmnopq\n",
                    "tokens_none": b"# nothing\n"}.items():
        write("http", name, b"\x03" + b)
    # mode 4: header values
    for name, b in {"hdr_json": b"application/json",
                    "hdr_json_charset": b" Application/JSON ; charset=\"UTF-8\"",
                    "hdr_ndjson": b"application/x-ndjson, application/json;q=0.5",
                    "hdr_agent": b"rankql-shell/0.1 (\x01\xc3\xa9)"}.items():
        write("http", name, b"\x04" + b)
    # mode 5: query strings
    for name, b in {"args_paging": b"limit=10&offset=20",
                    "args_filters": b"name=resnet50&source=timm&modality=image&runner=torch",
                    "args_twice": b"limit=1&limit=2",
                    "args_novalue": b"name",
                    "args_unknown": b"colour=red",
                    "args_many": b"&".join(b"a%d=1" % i for i in range(20)),
                    "args_big": b"limit=1001&offset=9999999999999999"}.items():
        write("http", name, b"\x05" + b)


datasets()
http()
