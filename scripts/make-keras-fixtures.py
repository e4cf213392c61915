#!/usr/bin/env python3
"""Write the small Keras U-Nets that ModelInteropTests import (Tests/Fixtures/keras/).

Run with the TensorFlow of `make tensorflow`:
    ~/.cache/ranksweep/tf-venv/bin/python scripts/make-keras-fixtures.py Tests/Fixtures/keras

Two models with the reference architecture (see README "Keras models in"), depth 2:
  named: the reference layer names (enc0_conv1, enc0_bn1, ..., up1, dec1_conv1, ..., head),
         3 input channels, base 4 filters, 16x16 input;
  auto:  no names given (Keras names them conv2d, conv2d_1, ..., batch_normalization_3, ...),
         1 input channel, base 2 filters, 16x16 input.
Each is saved three ways: NAME.keras, NAME.h5 (legacy full model) and NAME.weights.h5.
BatchNorm statistics and all biases get seeded random values so that every weight matters.
io.safetensors holds, per model, the input `NAME.x` (2,16,16,C) and Keras's inference output
`NAME.out` (2,16,16,1).
  keras2-named.h5: Keras 2 (tf_keras) legacy .h5, reference names with levels numbered from 1
         (enc1 ... enc2, up1, up2), 3 input channels, base 2, depth 2; its I/O is `keras2.x`/`keras2.out`.
Models that do not fit ranksweep's U-Net, for the error tests:
  misfit-dropout.keras (a Dropout after the bottleneck), misfit-kernel5.h5 (5x5 first convolution),
  misfit-extra-conv.weights.h5 (an extra 3x3 convolution before the head; weights only, no config).
"""

import json
import os
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402


def build_unet(channels, base, depth, size, named, first_kernel=3, dropout=False, extra_conv=False,
               keras=keras, first_level=0):
    """The reference U-Net: (Conv 3x3 -> BN -> ReLU) x 2 per block, MaxPool, Conv2DTranspose 2x2/2,
    concatenate [upsampled, skip], head Conv 1x1 sigmoid. `keras` is Keras 3 or tf_keras (Keras 2);
    `first_level` 1 numbers the levels enc1 ... encD, as some scripts do."""
    layers = keras.layers

    def n(name):
        if not named:
            return None
        for prefix in ("enc", "dec", "up", "pool", "concat"):
            if name.startswith(prefix) and name[len(prefix)].isdigit():
                rest = name[len(prefix):]
                digits = len(rest) - len(rest.lstrip("0123456789"))
                return f"{prefix}{int(rest[:digits]) + first_level}{rest[digits:]}"
        return name

    def block(x, filters, prefix, kernel=3):
        for i in (1, 2):
            x = layers.Conv2D(filters, kernel if i == 1 else 3, padding="same", name=n(f"{prefix}_conv{i}"))(x)
            x = layers.BatchNormalization(name=n(f"{prefix}_bn{i}"))(x)
            x = layers.ReLU(name=n(f"{prefix}_relu{i}"))(x)
        return x

    inputs = keras.Input(shape=(size, size, channels), name=n("image"))
    x = inputs
    skips = []
    for level in range(depth):
        x = block(x, base * 2 ** level, f"enc{level}", first_kernel if level == 0 else 3)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=n(f"pool{level}"))(x)
    x = block(x, base * 2 ** depth, "bottleneck")
    if dropout:
        x = layers.Dropout(0.5, name=n("bottleneck_dropout"))(x)
    for level in range(depth - 1, -1, -1):
        x = layers.Conv2DTranspose(base * 2 ** level, 2, strides=2, padding="same", name=n(f"up{level}"))(x)
        x = layers.Concatenate(name=n(f"concat{level}"))([x, skips[level]])
        x = block(x, base * 2 ** level, f"dec{level}")
    if extra_conv:
        x = layers.Conv2D(base, 3, padding="same", name=n("extra_conv"))(x)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name=n("head"))(x)
    return keras.Model(inputs, outputs, name="unet")


def randomise(model, rng):
    """Non-trivial values for every weight Keras would leave at 0 or 1."""
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.uniform(-0.3, 0.3, c),
                               rng.uniform(-0.2, 0.2, c), rng.uniform(0.5, 2.0, c)])
        elif kind in ("Conv2D", "Conv2DTranspose"):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.uniform(-0.2, 0.2, bias.shape)])


def write_safetensors(tensors, path):
    """safetensors without the safetensors package: header length, JSON header, float32 data."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/keras"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(14)
    keras.utils.set_random_seed(14)
    io = {}
    for style, channels, base in (("named", 3, 4), ("auto", 1, 2)):
        keras.backend.clear_session()
        model = build_unet(channels, base, depth=2, size=16, named=style == "named")
        randomise(model, rng)
        x = rng.uniform(0, 1, (2, 16, 16, channels)).astype("float32")
        io[f"{style}.x"] = x
        io[f"{style}.out"] = np.asarray(model(x, training=False))
        model.save(os.path.join(out, f"{style}.keras"))
        model.save(os.path.join(out, f"{style}.h5"))
        model.save_weights(os.path.join(out, f"{style}.weights.h5"))
    # Keras 2 (tf_keras): a legacy .h5 as TensorFlow 2.15 and older wrote them (weights named
    # `kernel:0`, Keras 2 config), with levels numbered from 1.
    import tf_keras
    tf_keras.backend.clear_session()
    model = build_unet(3, 2, depth=2, size=16, named=True, keras=tf_keras, first_level=1)
    randomise(model, rng)
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    io["keras2.x"] = x
    io["keras2.out"] = np.asarray(model(x, training=False))
    model.save(os.path.join(out, "keras2-named.h5"))
    write_safetensors(io, os.path.join(out, "io.safetensors"))

    keras.backend.clear_session()
    build_unet(3, 2, 2, 16, named=True, dropout=True).save(os.path.join(out, "misfit-dropout.keras"))
    keras.backend.clear_session()
    build_unet(3, 2, 2, 16, named=True, first_kernel=5).save(os.path.join(out, "misfit-kernel5.h5"))
    keras.backend.clear_session()
    build_unet(3, 2, 2, 16, named=False, extra_conv=True).save_weights(os.path.join(out, "misfit-extra-conv.weights.h5"))
    print(f"wrote fixtures into {out} with Keras {keras.__version__}")


if __name__ == "__main__":
    main()
