"""Minimal, strict safetensors reader/writer (numpy only).

The safetensors Python package is not available here, so this implements the
format directly:
    [u64 little-endian N][N bytes of JSON header][raw little-endian data]
The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
(offsets relative to the start of the data section) plus an optional
"__metadata__" object of string -> string.

Reading validates everything a corrupt file could get wrong: header length in
bounds, UTF-8 JSON object, known dtypes, non-negative integer shapes, byte
ranges that match dtype x shape, lie inside the file, and tile the data
section exactly (no gaps, no overlaps, no trailing bytes). Errors raise
ValueError naming the file and the tensor at fault.
"""
import json
import os

import numpy as np

DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
}
_NAME_OF = {v: k for k, v in DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _fail(path, msg):
    raise ValueError(f"{path}: {msg}")


def _parse_header(path, raw, file_size):
    if file_size < 8:
        _fail(path, f"file too short for a safetensors header ({file_size} bytes)")
    n = int.from_bytes(raw[:8], "little")
    if n < 2 or n > _MAX_HEADER or 8 + n > file_size:
        _fail(path, f"header length {n} out of range for a {file_size}-byte file")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"header is not valid UTF-8 JSON: {e}")
    if not isinstance(header, dict):
        _fail(path, "header is not a JSON object")
    return n, header


def _check_meta(path, meta):
    if not isinstance(meta, dict):
        _fail(path, "__metadata__ is not an object")
    for k, v in meta.items():
        if not isinstance(v, str):
            _fail(path, f"__metadata__[{k!r}] is not a string")
    return dict(meta)


def _check_entry(path, name, e):
    if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
        _fail(path, f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets")
    if e["dtype"] not in DTYPES:
        _fail(path, f"tensor {name!r}: unsupported dtype {e['dtype']!r}")
    shape, offs = e["shape"], e["data_offsets"]
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        _fail(path, f"tensor {name!r}: bad shape {shape!r}")
    if not isinstance(offs, list) or len(offs) != 2 or not all(
            isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offs):
        _fail(path, f"tensor {name!r}: bad data_offsets {offs!r}")
    dt = DTYPES[e["dtype"]]
    need = dt.itemsize * int(np.prod(shape, dtype=np.int64))
    if offs[1] - offs[0] != need:
        _fail(path, f"tensor {name!r}: data_offsets span {offs[1] - offs[0]} bytes, "
                    f"dtype {e['dtype']} shape {shape} needs {need}")
    return dt, tuple(shape), offs[0], offs[1]


def read(path):
    """Return (tensors: dict name -> numpy array (copy), metadata: dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    n, header = _parse_header(path, raw, len(raw))
    data = memoryview(raw)[8 + n:]
    meta = _check_meta(path, header.pop("__metadata__", {}))
    entries = sorted(((_check_entry(path, k, v), k) for k, v in header.items()),
                     key=lambda x: (x[0][2], x[0][3]))
    pos, out = 0, {}
    for (dt, shape, b, e), name in entries:
        if b != pos:
            _fail(path, f"tensor {name!r}: data starts at {b}, expected {pos} "
                        "(gap or overlap in data section)")
        if e > len(data):
            _fail(path, f"tensor {name!r}: data ends at {e}, beyond the "
                        f"{len(data)}-byte data section (truncated file?)")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(shape).copy()
        pos = e
    if pos != len(data):
        _fail(path, f"{len(data) - pos} trailing bytes after the last tensor")
    return out, meta


def write(path, tensors, metadata=None):
    """Write tensors (dict name -> numpy array) atomically (tmp file + rename).
    Names are written sorted; the header is space-padded to 8-byte alignment."""
    header, blobs, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        dt = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
        if dt not in _NAME_OF:
            raise ValueError(f"{path}: tensor {name!r}: unsupported dtype {a.dtype}")
        b = np.ascontiguousarray(a, dtype=dt).tobytes()
        header[name] = {"dtype": _NAME_OF[dt], "shape": list(a.shape),
                        "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-(8 + len(hj)) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
