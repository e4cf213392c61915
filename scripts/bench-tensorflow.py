#!/usr/bin/env python3
"""Measure TensorFlow/Keras (CPU) on the reference U-Net, for comparison with `ranksweep bench engine`.

Builds the exact reference Keras U-Net of the Keras reference (unet-small: 128x128x3, base 16, depth 4;
unet-paper: 256x256x3, base 64), checks its parameter counts against the reference counts, then
times training steps (BCE + soft Dice loss, Adam lr 1e-4, compiled `train_on_batch`) and inference
batches (compiled `predict_on_batch`) on seeded random inputs and random binary masks, one warm-up
of each first, as the Swift engine benchmark does.

Usage:
    scripts/bench-tensorflow.py [--model small|paper] [--steps N] [--infer-batches N]
                                [--threads N] [--json]

unet-small uses batch 8; unet-paper uses batch 4 and times training steps only. With --json the
last line printed is one JSON object: {"model", "tensorflow", "parameters", "trainable", "batch",
"train_step_seconds", "infer_batch_seconds", "train_step_cpu_seconds", "infer_batch_cpu_seconds", ...}:
wall seconds (perf_counter) and process CPU seconds, all threads (process_time), of each timed step.

Needs TensorFlow (e.g. `python3 -m venv /opt/tf-venv && /opt/tf-venv/bin/pip install tensorflow-cpu`,
then run it with /opt/tf-venv/bin/python). Exit codes: 0 ok, 3 TensorFlow not installed,
4 parameter counts differ from the reference counts.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

# name: (image size, base filters, batch, parameters, trainable, forward GFLOP per image)
MODELS = {
    "small": ("unet-small", 128, 16, 8, 1_946_993, 1_944_049, 1.516),
    "paper": ("unet-paper", 256, 64, 4, 31_055_297, 31_043_521, 96.33),
}
DEPTH = 4


def parse_args():
    parser = argparse.ArgumentParser(description="Benchmark TensorFlow/Keras on the reference U-Net.")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    parser.add_argument("--infer-batches", type=int, default=10,
                        help="timed inference batches (default 10; unet-small only)")
    parser.add_argument("--threads", type=int, default=2,
                        help="TensorFlow intra-op and inter-op threads (default 2)")
    parser.add_argument("--model", choices=sorted(MODELS), default="small", help="small (default) or paper")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.infer_batches < 0:
        parser.error("--infer-batches cannot be negative")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def build_unet(keras, size, base):
    """The reference Keras U-Net, with the reference layer names."""
    layers = keras.layers

    def block(x, filters, prefix):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=True, name=f"{prefix}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{prefix}_bn{i}")(x)
            x = layers.ReLU(name=f"{prefix}_relu{i}")(x)
        return x

    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = inputs
    skips = []
    for level in range(1, DEPTH + 1):
        x = block(x, base * 2 ** (level - 1), f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = block(x, base * 2 ** DEPTH, "bottleneck")
    for level in range(DEPTH, 0, -1):
        filters = base * 2 ** (level - 1)
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"concat{level}")([x, skips[level - 1]])
        x = block(x, filters, f"dec{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="head")(x)
    return keras.Model(inputs, outputs, name="unet")


def bce_dice_loss(ops):
    """bce (mean, clipped at 1e-7) + (1 - dice), dice with smooth 1 over the whole batch."""
    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        bce = ops.mean(-(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p)))
        dice = (2 * ops.sum(y_true * y_pred) + 1) / (ops.sum(y_true) + ops.sum(y_pred) + 1)
        return bce + (1 - dice)
    return loss


def main():
    args = parse_args()
    n = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = n
    os.environ["TF_NUM_INTRAOP_THREADS"] = n
    os.environ["TF_NUM_INTEROP_THREADS"] = n
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import numpy as np
        import tensorflow as tf
        import keras
    except ImportError:
        print("tensorflow not installed (pip install tensorflow-cpu)", file=sys.stderr)
        return 3
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    name, size, base, batch, want_params, want_trainable, gflop = MODELS[args.model]
    keras.utils.set_random_seed(1)
    model = build_unet(keras, size, base)
    params = int(model.count_params())
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    if (params, trainable) != (want_params, want_trainable):
        print(f"{name}: parameter count mismatch: got {params:,} ({trainable:,} trainable), "
              f"the reference says {want_params:,} ({want_trainable:,} trainable)", file=sys.stderr)
        return 4
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss=bce_dice_loss(keras.ops),
                  jit_compile=False)

    rng = np.random.default_rng(2)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    y = (rng.random((batch, size, size, 1)) < 0.3).astype(np.float32)

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {args.threads} threads", flush=True)
    print(f"{name} {size}x{size}x3 base {base} depth {DEPTH}, batch {batch}: "
          f"parameters {params:,} ({trainable:,} trainable)", flush=True)

    model.train_on_batch(x, y)  # warm-up: traces and compiles the train function
    # Wall time and process CPU time (all threads, as the engine's CLOCK_PROCESS_CPUTIME_ID) of each step.
    train, train_cpu = [], []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train_on_batch(x, y)
        train.append(time.perf_counter() - start)
        train_cpu.append(time.process_time() - cpu_start)
    infer, infer_cpu = [], []
    if args.model == "small" and args.infer_batches > 0:
        model.predict_on_batch(x)  # warm-up
        for _ in range(args.infer_batches):
            start, cpu_start = time.perf_counter(), time.process_time()
            model.predict_on_batch(x)
            infer.append(time.perf_counter() - start)
            infer_cpu.append(time.process_time() - cpu_start)

    med, cpu_med = statistics.median(train), statistics.median(train_cpu)
    print(f"  training  {batch / med:.1f} images/s (median step {med:.3f} s wall, {cpu_med:.3f} CPU-s; min {min(train):.3f}, "
          f"max {max(train):.3f}), {3 * gflop * batch / med:.0f} GFLOP/s")
    if infer:
        imed, icpu_med = statistics.median(infer), statistics.median(infer_cpu)
        print(f"  inference {batch / imed:.1f} images/s (median batch {imed:.3f} s wall, {icpu_med:.3f} CPU-s; best "
              f"{batch / min(infer):.1f} images/s), {gflop * batch / imed:.0f} GFLOP/s")
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak_rss_mib:.0f} MiB", flush=True)
    if args.json:
        print(json.dumps({
            "model": name, "tensorflow": tf.__version__, "parameters": params, "trainable": trainable,
            "batch": batch, "threads": args.threads,
            "train_step_seconds": [round(t, 6) for t in train],
            "infer_batch_seconds": [round(t, 6) for t in infer],
            "train_step_cpu_seconds": [round(t, 6) for t in train_cpu],
            "infer_batch_cpu_seconds": [round(t, 6) for t in infer_cpu],
            "peak_rss_mib": round(peak_rss_mib, 1),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
