#!/usr/bin/env python3
"""Writes a copy of a safetensors file with its f32 tensors rounded to f16: half the size.

scripts/gpu-check.sh --pack uses it for the MiniLM weights, so that they travel to a GPU
machine whose copy of the tree is size-limited. memescope loads any float weights as f32,
so the model computes in f32 as usual; only its weights are rounded (a relative error of
about 5e-4), which leaves timings as they are and scores nearly so.

usage: safetensors-f16.py SRC DST
"""
import json, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    out_header, blobs, offset = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out_header[name] = info
            continue
        start, end = info["data_offsets"]
        f.seek(base + start)
        data = f.read(end - start)
        if info["dtype"] == "F32":
            data = np.frombuffer(data, dtype="<f4").astype("<f2").tobytes()
            info = dict(info, dtype="F16")
        out_header[name] = dict(info, data_offsets=[offset, offset + len(data)])
        blobs.append(data)
        offset += len(data)
raw = json.dumps(out_header, separators=(",", ":")).encode()
raw += b" " * (-len(raw) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(raw)) + raw)
    for blob in blobs:
        f.write(blob)
