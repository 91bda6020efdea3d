#!/usr/bin/env python3
"""Writes the two LZ4 fixtures beside it: Parquet files whose one page uses the deprecated LZ4
codec (5), which pyarrow no longer writes (it writes LZ4_RAW): hadoop_lz4.parquet in Hadoop's
framing (big-endian sizes before each block; parquet-mr and Hadoop writers), bare_block_lz4.parquet
as one bare LZ4 block (writers that misread the spec). Written field by field in Thrift's compact
protocol. usage: make_lz4_fixtures.py DIR"""
import os
import struct
import sys
import pyarrow as pa

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        if n: out.append(b | 0x80)
        else: out.append(b); return bytes(out)

def zz(n): return varint((n << 1) ^ (n >> 63))

class S:
    def __init__(s): s.b = bytearray(); s.last = [0]
    def fh(s, fid, t):
        d = fid - s.last[-1]
        assert 0 < d < 16
        s.b.append((d << 4) | t); s.last[-1] = fid
    def i32(s, fid, v): s.fh(fid, 5); s.b += zz(v)
    def i64(s, fid, v): s.fh(fid, 6); s.b += zz(v)
    def bin(s, fid, v): s.fh(fid, 8); s.b += varint(len(v)) + v
    def begin(s, fid=None):
        if fid is not None: s.fh(fid, 12)
        s.last.append(0)
    def end(s): s.b.append(0); s.last.pop()
    def lst(s, fid, n, et): s.fh(fid, 9); s.b.append((n << 4) | et)

rows = ["zero", "one ünïcode", "two " * 50]
plain = b"".join(struct.pack("<I", len(r.encode())) + r.encode() for r in rows)


def write(path, page):
    h = S(); h.begin()
    h.i32(1, 0); h.i32(2, len(plain)); h.i32(3, len(page))
    h.begin(5); h.i32(1, len(rows)); h.i32(2, 0); h.i32(3, 3); h.i32(4, 3); h.end()
    h.end()
    header = bytes(h.b)
    data_offset = 4
    chunk = header + page

    m = S(); m.begin()
    m.i32(1, 1)
    m.lst(2, 2, 12)
    m.begin(); m.bin(4, b"schema"); m.i32(5, 1); m.end()
    m.begin(); m.i32(1, 6); m.i32(3, 0); m.bin(4, b"text"); m.i32(6, 0); m.end()
    m.i64(3, len(rows))
    m.lst(4, 1, 12)
    m.begin()
    m.lst(1, 1, 12)
    m.begin(); m.i64(2, data_offset)
    m.begin(3)
    m.i32(1, 6); m.lst(2, 1, 5); m.b += zz(0); m.lst(3, 1, 8); m.b += varint(4) + b"text"
    m.i32(4, 5); m.i64(5, len(rows)); m.i64(6, len(header) + len(plain)); m.i64(7, len(chunk)); m.i64(9, data_offset)
    m.end()
    m.end()
    m.i64(2, len(header) + len(plain)); m.i64(3, len(rows))
    m.end()
    m.end()
    footer = bytes(m.b)
    with open(path, "wb") as f:
        f.write(b"PAR1" + chunk + footer + struct.pack("<I", len(footer)) + b"PAR1")


half = len(plain) // 2
hadoop = b""
for part in (plain[:half], plain[half:]):  # two Hadoop frames
    block = pa.compress(part, codec="lz4_raw", asbytes=True)
    hadoop += struct.pack(">II", len(part), len(block)) + block
write(os.path.join(sys.argv[1], "hadoop_lz4.parquet"), hadoop)
write(os.path.join(sys.argv[1], "bare_block_lz4.parquet"), pa.compress(plain, codec="lz4_raw", asbytes=True))
