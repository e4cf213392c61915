import Engine

/// Image resizing with half-pixel centres (output pixel `o` samples the input at
/// `(o + 0.5) * in / out - 0.5`), the convention of OpenCV, PIL and TensorFlow's
/// `half_pixel_centers`, so a downscale by 2 averages the 2x2 block it covers and nothing shifts.
public enum Resize {
    /// Bilinear resize of an `[H, W, C]` image to `[height, width, C]` (for images; edges clamp).
    public static func bilinear(_ hwc: Tensor, height: Int, width: Int) -> Tensor {
        precondition(hwc.rank == 3, "Resize.bilinear: expected [H, W, C], got \(hwc.shape)")
        precondition(height > 0 && width > 0, "Resize.bilinear: target \(height)x\(width) must be positive")
        let inH = hwc.shape[0], inW = hwc.shape[1], c = hwc.shape[2]
        precondition(inH > 0 && inW > 0, "Resize.bilinear: empty input \(hwc.shape)")
        if inH == height && inW == width { return hwc }
        // Per output column: the two source columns and the weight of the second, computed once.
        let xs = taps(outSize: width, inSize: inW)
        let ys = taps(outSize: height, inSize: inH)
        var out = [Float](repeating: 0, count: height * width * c)
        hwc.storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<height {
                    let (y0, y1, fy) = ys[oy]
                    let row0 = y0 * inW * c, row1 = y1 * inW * c
                    var d = oy * width * c
                    for ox in 0..<width {
                        let (x0, x1, fx) = xs[ox]
                        let a = row0 + x0 * c, b = row0 + x1 * c, e = row1 + x0 * c, f = row1 + x1 * c
                        for k in 0..<c {
                            let top = src[a + k] + (src[b + k] - src[a + k]) * fx
                            let bottom = src[e + k] + (src[f + k] - src[e + k]) * fx
                            dst[d] = top + (bottom - top) * fy
                            d += 1
                        }
                    }
                }
            }
        }
        return Tensor(shape: [height, width, c], storage: out)
    }

    /// The resize for images: area averaging when shrinking on both axes (every source pixel counts,
    /// so fine detail does not alias away), bilinear otherwise.
    public static func image(_ hwc: Tensor, height: Int, width: Int) -> Tensor {
        hwc.shape[0] >= height && hwc.shape[1] >= width ? area(hwc, height: height, width: width)
            : bilinear(hwc, height: height, width: width)
    }

    /// Area (box-filter) resize of an `[H, W, C]` image for shrinking: each output pixel is the
    /// mean of the source area it covers, partial pixels weighted by their overlap.
    public static func area(_ hwc: Tensor, height: Int, width: Int) -> Tensor {
        precondition(hwc.rank == 3, "Resize.area: expected [H, W, C], got \(hwc.shape)")
        precondition(height > 0 && width > 0, "Resize.area: target \(height)x\(width) must be positive")
        let inH = hwc.shape[0], inW = hwc.shape[1], c = hwc.shape[2]
        precondition(inH > 0 && inW > 0, "Resize.area: empty input \(hwc.shape)")
        if inH == height && inW == width { return hwc }
        let xs = coverage(outSize: width, inSize: inW), ys = coverage(outSize: height, inSize: inH)
        var out = [Float](repeating: 0, count: height * width * c)
        var acc = [Float](repeating: 0, count: c)
        hwc.storage.withUnsafeBufferPointer { src in
            for oy in 0..<height {
                for ox in 0..<width {
                    for k in 0..<c { acc[k] = 0 }
                    for (sy, wy) in ys[oy] {
                        for (sx, wx) in xs[ox] {
                            let weight = wy * wx, s = (sy * inW + sx) * c
                            for k in 0..<c { acc[k] += weight * src[s + k] }
                        }
                    }
                    let d = (oy * width + ox) * c
                    for k in 0..<c { out[d + k] = acc[k] }
                }
            }
        }
        return Tensor(shape: [height, width, c], storage: out)
    }

    /// Nearest-neighbour resize of an `[H, W, C]` tensor (for masks: keeps values binary).
    public static func nearest(_ hwc: Tensor, height: Int, width: Int) -> Tensor {
        precondition(hwc.rank == 3, "Resize.nearest: expected [H, W, C], got \(hwc.shape)")
        precondition(height > 0 && width > 0, "Resize.nearest: target \(height)x\(width) must be positive")
        let inH = hwc.shape[0], inW = hwc.shape[1], c = hwc.shape[2]
        precondition(inH > 0 && inW > 0, "Resize.nearest: empty input \(hwc.shape)")
        if inH == height && inW == width { return hwc }
        let xs = (0..<width).map { min(inW - 1, Int((Double($0) + 0.5) * Double(inW) / Double(width))) }
        var out = [Float](repeating: 0, count: height * width * c)
        hwc.storage.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var d = 0
                for oy in 0..<height {
                    let sy = min(inH - 1, Int((Double(oy) + 0.5) * Double(inH) / Double(height)))
                    for ox in 0..<width {
                        let s = (sy * inW + xs[ox]) * c
                        for k in 0..<c { dst[d] = src[s + k]; d += 1 }
                    }
                }
            }
        }
        return Tensor(shape: [height, width, c], storage: out)
    }

    /// For each output index: the source indices its interval [o, o + 1) x in/out overlaps, each
    /// with its share of the interval (the shares sum to 1).
    private static func coverage(outSize: Int, inSize: Int) -> [[(Int, Float)]] {
        let scale = Double(inSize) / Double(outSize)
        return (0..<outSize).map { o in
            let start = Double(o) * scale, end = Double(o + 1) * scale
            var taps: [(Int, Float)] = []
            var i = Int(start.rounded(.down))
            while Double(i) < end && i < inSize {
                let overlap = min(end, Double(i + 1)) - max(start, Double(i))
                if overlap > 1e-12 { taps.append((i, Float(overlap / scale))) }
                i += 1
            }
            return taps
        }
    }

    /// For each output index: lower and upper source index and the upper one's weight.
    private static func taps(outSize: Int, inSize: Int) -> [(Int, Int, Float)] {
        let scale = Double(inSize) / Double(outSize)
        return (0..<outSize).map { o in
            let s = min(max((Double(o) + 0.5) * scale - 0.5, 0), Double(inSize - 1))
            let i0 = Int(s)
            let i1 = min(i0 + 1, inSize - 1)
            return (i0, i1, Float(s - Double(i0)))
        }
    }
}
