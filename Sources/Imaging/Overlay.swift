import Engine

/// Side-by-side pictures of a segmentation, for reports: what the model saw, the truth, and what
/// each model predicted, with the boundary of each mask drawn over the image.
public enum Overlay {
    /// Colour of the ground-truth boundary (green).
    public static let truthColour: (Float, Float, Float) = (0.0, 1.0, 0.0)
    /// Colours of the prediction boundaries, in order, repeating: red, yellow, magenta, cyan,
    /// orange, blue.
    public static let predictionColours: [(Float, Float, Float)] = [
        (1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 0.5, 0.0), (0.2, 0.4, 1.0),
    ]
    /// White gap between panels, in pixels.
    public static let gap = 4

    /// An RGB picture `[H, P*W + (P-1)*gap, 3]` of P = 2 + predictions.count panels, left to right:
    /// the image; the image with the truth boundary (green); then, in the order given, the image
    /// with each prediction's boundary (probability > 0.5) in `predictionColours[i]`. Labels are
    /// not drawn (no font): the caller writes them beside the picture, in the same order.
    ///
    /// - Parameters:
    ///   - image: `[H, W, 1 or 3]` in [0, 1] (gray is shown as gray RGB).
    ///   - truth: `[H, W, 1]` binary mask.
    ///   - predictions: `[H, W, 1]` probability maps with their labels.
    public static func sideBySide(image: Tensor, truth: Tensor,
                                  predictions: [(label: String, probabilities: Tensor)]) -> Tensor {
        precondition(image.rank == 3 && (image.shape[2] == 1 || image.shape[2] == 3),
                     "Overlay.sideBySide: image must be [H, W, 1 or 3], got \(image.shape)")
        let h = image.shape[0], w = image.shape[1]
        precondition(truth.shape == [h, w, 1], "Overlay.sideBySide: truth must be [\(h), \(w), 1], got \(truth.shape)")
        for p in predictions {
            precondition(p.probabilities.shape == [h, w, 1],
                         "Overlay.sideBySide: prediction '\(p.label)' must be [\(h), \(w), 1], got \(p.probabilities.shape)")
        }
        let rgb = PNGCodec.convert(image, toChannels: 3)
        let panels = 2 + predictions.count
        let outW = panels * w + (panels - 1) * gap
        var out = [Float](repeating: 1, count: h * outW * 3)
        var masks: [(Tensor, (Float, Float, Float))?] = [nil, (truth, truthColour)]
        for (i, p) in predictions.enumerated() { masks.append((p.probabilities, predictionColours[i % predictionColours.count])) }
        for (panel, overlay) in masks.enumerated() {
            let left = panel * (w + gap)
            for y in 0..<h {
                for x in 0..<w {
                    let s = (y * w + x) * 3, d = (y * outW + left + x) * 3
                    out[d] = rgb.storage[s]; out[d + 1] = rgb.storage[s + 1]; out[d + 2] = rgb.storage[s + 2]
                }
            }
            guard let (mask, colour) = overlay else { continue }
            for (y, x) in boundary(of: mask) {
                let d = (y * outW + left + x) * 3
                out[d] = colour.0; out[d + 1] = colour.1; out[d + 2] = colour.2
            }
        }
        return Tensor(shape: [h, outW, 3], storage: out)
    }

    /// Builds `sideBySide` and writes it as an 8-bit RGB PNG (atomically, via `PNGCodec.write`).
    public static func writeSideBySide(to path: String, image: Tensor, truth: Tensor,
                                       predictions: [(label: String, probabilities: Tensor)]) throws {
        try PNGCodec.write(sideBySide(image: image, truth: truth, predictions: predictions), to: path)
    }

    /// Pixels inside the mask (> 0.5) with at least one 4-neighbour outside it. The image border
    /// does not count as outside, so a mask touching the edge is not outlined along the edge.
    public static func boundary(of mask: Tensor) -> [(y: Int, x: Int)] {
        precondition(mask.rank == 3 && mask.shape[2] == 1, "Overlay.boundary: expected [H, W, 1], got \(mask.shape)")
        let h = mask.shape[0], w = mask.shape[1]
        var result: [(y: Int, x: Int)] = []
        mask.storage.withUnsafeBufferPointer { m in
            func inside(_ y: Int, _ x: Int) -> Bool { m[y * w + x] > 0.5 }
            for y in 0..<h {
                for x in 0..<w where inside(y, x) {
                    if (y > 0 && !inside(y - 1, x)) || (y < h - 1 && !inside(y + 1, x))
                        || (x > 0 && !inside(y, x - 1)) || (x < w - 1 && !inside(y, x + 1)) {
                        result.append((y, x))
                    }
                }
            }
        }
        return result
    }
}
