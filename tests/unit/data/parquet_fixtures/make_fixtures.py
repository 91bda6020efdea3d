#!/usr/bin/env python3
"""Writes the hand-built fixtures beside it, Parquet files that pyarrow reads but does not write
(see README.md there), field by field in Thrift's compact protocol:
  hadoop_lz4.parquet, bare_block_lz4.parquet   the deprecated LZ4 codec (5): Hadoop framing
                                               (big-endian sizes before each block), a bare block
  all_null_v2_empty_values.parquet             parquet-java's all-null v2 page: Snappy codec, an
                                               empty (not compressed-empty) values area
The LZ4 blocks come from pyarrow. usage: make_fixtures.py DIR. The reference script imports
repeated_chunk() from here for a hostile file it writes at test time."""
import os
import struct
import sys

import pyarrow as pa


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zz(n):
    return varint((n << 1) ^ (n >> 63))


class Struct:
    """A compact-protocol writer: field headers carry the id delta and the type."""

    def __init__(self):
        self.b = bytearray()
        self.last = [0]

    def header(self, fid, t):
        d = fid - self.last[-1]
        assert 0 < d < 16
        self.b.append((d << 4) | t)
        self.last[-1] = fid

    def i32(self, fid, v):
        self.header(fid, 5)
        self.b += zz(v)

    def i64(self, fid, v):
        self.header(fid, 6)
        self.b += zz(v)

    def boolean(self, fid, v):
        self.header(fid, 1 if v else 2)

    def binary(self, fid, v):
        self.header(fid, 8)
        self.b += varint(len(v)) + v

    def begin(self, fid=None):
        if fid is not None:
            self.header(fid, 12)
        self.last.append(0)

    def end(self):
        self.b.append(0)
        self.last.pop()

    def list(self, fid, n, element_type):
        self.header(fid, 9)
        self.b.append((n << 4) | element_type)


def parquet(path, header, page, rows, codec, optional, uncompressed_total, row_groups=1):
    """One column "text" (BYTE_ARRAY, UTF8), one page (`header` + `page`) in one row group, or
    named by `row_groups` row groups (a hostile file: they all read the same chunk)."""
    chunk = header + page
    m = Struct()
    m.begin()
    m.i32(1, 1)
    m.list(2, 2, 12)
    m.begin(); m.binary(4, b"schema"); m.i32(5, 1); m.end()
    m.begin(); m.i32(1, 6); m.i32(3, 1 if optional else 0); m.binary(4, b"text"); m.i32(6, 0); m.end()
    m.i64(3, rows * row_groups)
    m.list(4, row_groups, 12)
    for _ in range(row_groups):
        m.begin()
        m.list(1, 1, 12)
        m.begin(); m.i64(2, 4)
        m.begin(3)
        m.i32(1, 6); m.list(2, 1, 5); m.b += zz(0); m.list(3, 1, 8); m.b += varint(4) + b"text"
        m.i32(4, codec); m.i64(5, rows); m.i64(6, uncompressed_total); m.i64(7, len(chunk)); m.i64(9, 4)
        m.end()
        m.end()
        m.i64(2, uncompressed_total); m.i64(3, rows)
        m.end()
    m.end()
    footer = bytes(m.b)
    with open(path, "wb") as f:
        f.write(b"PAR1" + chunk + footer + struct.pack("<I", len(footer)) + b"PAR1")


def v1_page_header(rows, uncompressed, compressed):
    h = Struct()
    h.begin()
    h.i32(1, 0); h.i32(2, uncompressed); h.i32(3, compressed)
    h.begin(5); h.i32(1, rows); h.i32(2, 0); h.i32(3, 3); h.i32(4, 3); h.end()
    h.end()
    return bytes(h.b)


def main(out):
    texts = ["zero", "one ünïcode", "two " * 50]
    plain = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)

    half = len(plain) // 2
    hadoop = b""
    for part in (plain[:half], plain[half:]):  # two Hadoop frames
        block = pa.compress(part, codec="lz4_raw", asbytes=True)
        hadoop += struct.pack(">II", len(part), len(block)) + block
    for name, page in (("hadoop_lz4", hadoop), ("bare_block_lz4", pa.compress(plain, codec="lz4_raw", asbytes=True))):
        header = v1_page_header(len(texts), len(plain), len(page))
        parquet(os.path.join(out, name + ".parquet"), header, page, len(texts), 5, False, len(header) + len(plain))

    # Ten nulls in a v2 page: definition levels (an RLE run of ten 0s, uncompressed as v2 has them),
    # then nothing at all where the Snappy-compressed values would be.
    levels = varint(10 << 1) + b"\x00"
    h = Struct()
    h.begin()
    h.i32(1, 3); h.i32(2, len(levels)); h.i32(3, len(levels))
    h.begin(8); h.i32(1, 10); h.i32(2, 10); h.i32(3, 10); h.i32(4, 0); h.i32(5, len(levels)); h.i32(6, 0)
    h.boolean(7, True); h.end()
    h.end()
    parquet(os.path.join(out, "all_null_v2_empty_values.parquet"), bytes(h.b), levels, 10, 1, True,
            len(h.b) + len(levels))


def repeated_chunk(path):
    """Three row groups that all name one column chunk (a hostile file; pyarrow reads it)."""
    text = b"abc" * 100
    plain = struct.pack("<I", len(text)) + text
    header = v1_page_header(1, len(plain), len(plain))
    parquet(path, header, plain, 1, 0, False, len(header) + len(plain), row_groups=3)


if __name__ == "__main__":
    main(sys.argv[1])
