#!/usr/bin/env python3
"""Check ranksweep's ONNX export against onnxruntime (`make interop`).

Usage: scripts/check-onnx.py RANKSWEEP_BINARY [WORK_DIR]

With the built binary it trains a tiny baseline (synthetic data, 32x32, depth 2, base 4, one epoch),
compresses it (SVD, Tucker-2 and spatial SVD, rank 2, no fine-tuning), and exports the baseline, the compressed models and the
Keras fixture Tests/Fixtures/keras/named.keras to ONNX. `export --sample-out` also writes a seeded
random input batch and ranksweep's own output on it; onnxruntime runs the ONNX file on that input,
and the largest difference must be at most 1e-4. For the Keras fixture the reference is Keras's own
output (Tests/Fixtures/keras/io.safetensors). Each compressed model's initializer total must equal the
compression report's parameter count (result.json summary.parametersAfter).
Needs numpy and onnxruntime (the Makefile's interop venv). Exit 0 when every check passes.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime

TOLERANCE = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    return {name: np.frombuffer(body[e["data_offsets"][0]:e["data_offsets"][1]], "<f4").reshape(e["shape"])
            for name, e in header.items() if name != "__metadata__"}


def run(*args):
    print("$ " + " ".join(args), flush=True)
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    print(out.strip().splitlines()[-1] if out.strip() else "", flush=True)
    return out


def onnx_output(model, x):
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    assert [i.name for i in inputs] == ["image"], f"{model}: inputs {[i.name for i in inputs]}"
    return session.run(["probabilities"], {"image": x})[0]


def compare(label, got, expected):
    difference = float(np.max(np.abs(got - expected)))
    ok = got.shape == expected.shape and difference <= TOLERANCE
    print(f"{label}: onnxruntime {onnxruntime.__version__} vs reference, shape {got.shape}, max |difference| = {difference:.3g} "
          f"({'ok' if ok else 'FAIL'}, tolerance {TOLERANCE})", flush=True)
    return ok


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    keep = len(sys.argv) > 2
    work = sys.argv[2] if keep else tempfile.mkdtemp(prefix="ranksweep-interop-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    run(binary, "train", "--synthetic-count", "24", "--image-size", "32", "--base-filters", "4", "--depth", "2",
        "--epochs", "1", "--batch-size", "8", "--out-dir", "baseline")
    run(binary, "compress", "--model", "baseline/model.safetensors", "--method", "svd", "--rank", "2",
        "--finetune-epochs", "0", "--out-dir", "compressed")
    # Tucker-2 (1x1, 3x3 core, 1x1) and spatial SVD (3x1, 1x3): three and two Conv nodes per layer.
    run(binary, "compress", "--model", "baseline/model.safetensors", "--method", "tucker2", "--rank", "2",
        "--finetune-epochs", "0", "--out-dir", "tucker2")
    run(binary, "compress", "--model", "baseline/model.safetensors", "--method", "spatial-svd", "--rank", "2",
        "--finetune-epochs", "0", "--out-dir", "spatial-svd")
    ok = True
    for name in ("baseline", "compressed", "tucker2", "spatial-svd"):
        printed = run(binary, "export", f"{name}/model.safetensors", "--onnx", f"{name}.onnx",
                      "--sample-out", f"{name}-sample.safetensors", "--sample-size", "32")
        sample = read_safetensors(f"{name}-sample.safetensors")
        ok &= compare(name, onnx_output(f"{name}.onnx", sample["x"]), sample["y"])
        if name != "baseline":
            exported = int(re.search(r"holding (\d+) parameters", printed).group(1))
            with open(f"{name}/result.json") as f:
                reported = json.load(f)["summary"]["parametersAfter"]
            same = exported == reported
            print(f"{name}: ONNX initializers hold {exported} parameters, the report says {reported} "
                  f"({'ok' if same else 'FAIL'})", flush=True)
            ok &= same
    keras = os.path.join(ROOT, "Tests/Fixtures/keras")
    run(binary, "export", os.path.join(keras, "named.keras"), "--onnx", "keras-named.onnx")
    io = read_safetensors(os.path.join(keras, "io.safetensors"))
    ok &= compare("keras named.keras (reference: Keras's output)", onnx_output("keras-named.onnx", io["named.x"]), io["named.out"])
    print("interop: all checks passed" if ok else f"interop: FAILED (files kept in {work})", flush=True)
    if ok and not keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
