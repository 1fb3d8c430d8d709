#!/usr/bin/python3
"""Independent safetensors reader/writer for interop tests (numpy only).

The Python `safetensors` package is not available here, so this file follows
its Rust core (safetensors/src/tensor.rs: read_metadata + Metadata::validate)
check for check, and writes files the way its `serialize` does (metadata
first, tensors sorted by alignment then name, compact JSON header padded
with spaces to a multiple of 8).

  st_check.py check [--selfsup] FILE   validate FILE strictly and compare its
                                       tensors with the interop set below;
                                       --selfsup also checks selfsup's layout
  st_check.py write FILE               write the interop set
selfsup's writer adds the metadata entry "data_xxh64" (the XXH64 of the data
section, 16 hex digits); the reader verifies it when present, with its own
XXH64 below (from xxHash's spec, doc/xxhash_spec.md).
Exit status 0 on success; on failure a message on stderr and status 1.
"""
import json
import struct
import sys

import numpy as np

MAX_HEADER_SIZE = 100_000_000
DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "F8_E5M2": np.uint8, "F8_E4M3": np.uint8,
    "I16": np.int16, "U16": np.uint16, "F16": np.float16, "BF16": np.uint16,
    "I32": np.int32, "U32": np.uint32, "F32": np.float32,
    "I64": np.int64, "U64": np.uint64, "F64": np.float64,
}
# numpy dtype string ('<f4', '|u1', ...) -> safetensors name, for writing.
NAMES = {np.dtype(v).newbyteorder("<").str: k for k, v in DTYPES.items()
         if k not in ("F8_E5M2", "F8_E4M3", "BF16")}


class FormatError(Exception):
    pass


def interop_set():
    """The tensors and metadata tests/test_io_safetensors.c writes and reads."""
    tensors = {
        "emb.weight": ((np.arange(15) - 7) * 0.25).astype(np.float32).reshape(5, 3),
        "ln.bias": (np.float32(1) / np.arange(1, 4, dtype=np.float32)),
        "step": np.array(123456789012, dtype=np.int64),
        "tokens": (np.arange(8) ** 2 - 10).astype(np.int32).reshape(2, 4),
        "mask": np.array([0, 1, 255], dtype=np.uint8),
        "double": np.array([3.141592653589793, -2.718281828459045], dtype=np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    meta = {"format": "pt", "selfsup.config": '{"d_model": 3, "name": "\u00fc\\n"}'}
    return tensors, meta


M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & M64, 31) * P1) & M64


def xxh64(data, seed=0):
    """XXH64 of bytes DATA, as xxHash's spec defines it (seed 0 by default)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        lanes = np.frombuffer(data, dtype="<u8", count=(n // 32) * 4)
        for j in range(0, len(lanes), 4):
            v = [_round(v[k], int(lanes[j + k])) for k in range(4)]
        i = (n // 32) * 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while n - i >= 8:
        h = (_rotl(h ^ _round(0, int.from_bytes(data[i:i + 8], "little")), 27) * P1 + P4) & M64
        i += 8
    if n - i >= 4:
        h = (_rotl(h ^ ((int.from_bytes(data[i:i + 4], "little") * P1) & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ ((data[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise FormatError(f"duplicate key(s) {sorted(dup)}")
    return dict(pairs)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def read(path):
    """Parse and validate PATH; return (header size, header text, metadata,
    {name: array}, entries in header order)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise FormatError("HeaderTooSmall: file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER_SIZE:
        raise FormatError(f"HeaderTooLarge: {n}")
    if 8 + n > len(buf):
        raise FormatError(f"InvalidHeaderLength: header {n} bytes, file {len(buf)}")
    try:
        text = buf[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"InvalidHeader: not UTF-8: {e}")
    if not text.startswith("{"):
        raise FormatError("InvalidHeaderStart: header does not start with '{'")
    try:
        header = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise FormatError(f"InvalidHeaderDeserialization: {e}")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ must map strings to strings")
    data = buf[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise FormatError(f"tensor {name!r}: needs dtype, shape and data_offsets")
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise FormatError(f"tensor {name!r}: unknown dtype {dt!r}")
        if not isinstance(shape, list) or not all(is_uint(d) for d in shape):
            raise FormatError(f"tensor {name!r}: bad shape {shape!r}")
        if not isinstance(offs, list) or len(offs) != 2 or not all(is_uint(o) for o in offs):
            raise FormatError(f"tensor {name!r}: bad data_offsets {offs!r}")
        entries.append((name, dt, shape, offs[0], offs[1]))
    pos = 0
    for name, dt, shape, b, e in sorted(entries, key=lambda x: (x[3], x[4])):
        if b != pos or e < b:
            raise FormatError(f"InvalidOffset: tensor {name!r} [{b}, {e}] after offset {pos}")
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(DTYPES[dt]).itemsize
        if nbytes != e - b:
            raise FormatError(f"TensorInvalidInfo: tensor {name!r} shape {shape} {dt} "
                              f"needs {nbytes} bytes, offsets hold {e - b}")
        pos = e
    if pos != len(data):
        raise FormatError(f"MetadataIncompleteBuffer: tensors end at {pos}, data is {len(data)} bytes "
                          "(file truncated or trailing bytes)")
    if "data_xxh64" in meta:
        got = f"{xxh64(data):016x}"
        if meta["data_xxh64"].lower() != got:
            raise FormatError(f"data_xxh64 {meta['data_xxh64']!r} in the header, the data's XXH64 is {got}")
    arrays = {}
    for name, dt, shape, b, e in entries:
        t = np.dtype(DTYPES[dt]).newbyteorder("<")
        arrays[name] = np.frombuffer(data, dtype=t, count=(e - b) // t.itemsize, offset=b).reshape(shape)
    return n, text, meta, arrays, entries


def check_selfsup_layout(n, text, entries, want_order):
    """selfsup's writer: 8-aligned data start, space padding, given order."""
    if n % 8:
        raise FormatError(f"header size {n} is not a multiple of 8")
    body = text.rstrip(" ")
    if not body.endswith("}") or len(text) - len(body) >= 8:
        raise FormatError("header padding is not 0..7 trailing spaces")
    order = [e[0] for e in entries]
    if order != want_order:
        raise FormatError(f"tensor order {order}, expected the written order {want_order}")
    if any(e[3] > f[3] for e, f in zip(entries, entries[1:])):
        raise FormatError("offsets do not follow the written order")


def check(path, selfsup):
    n, text, meta, arrays, entries = read(path)
    want, want_meta = interop_set()
    if selfsup and "data_xxh64" not in meta:
        raise FormatError("no data_xxh64 checksum in the metadata")
    meta = {k: v for k, v in meta.items() if k != "data_xxh64"}
    if meta != want_meta:
        raise FormatError(f"metadata {meta!r}, expected {want_meta!r}")
    if set(arrays) != set(want):
        raise FormatError(f"tensors {sorted(arrays)}, expected {sorted(want)}")
    for name, w in want.items():
        got = arrays[name]
        if got.dtype != w.dtype or got.shape != w.shape or not np.array_equal(got, w):
            raise FormatError(f"tensor {name!r}: got {got.dtype}{got.shape} {got.ravel()[:8]}, "
                              f"expected {w.dtype}{w.shape} {w.ravel()[:8]}")
    if selfsup:
        check_selfsup_layout(n, text, entries, list(want))


def write(path):
    tensors, meta = interop_set()
    order = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header, blobs, pos = {"__metadata__": meta}, [], 0
    for name in order:
        a = np.asarray(tensors[name], order="C").astype(tensors[name].dtype.newbyteorder("<"))
        raw = a.tobytes()
        header[name] = {"dtype": NAMES[a.dtype.str],
                        "shape": list(a.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    # ensure_ascii (the json module's default) escapes non-ASCII as \uXXXX,
    # which exercises the reader's unescaping; serde would emit raw UTF-8.
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(argv):
    try:
        if len(argv) >= 2 and argv[0] == "check":
            check(argv[-1], "--selfsup" in argv[1:-1])
        elif len(argv) == 2 and argv[0] == "write":
            write(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (FormatError, OSError) as e:
        print(f"{argv[-1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
