import Basics
import Engine
import Foundation

/// A built-in segmentation task that looks like endoscopy / dermoscopy images, so the whole
/// pipeline runs with no data to download.
///
/// Each image: a tinted tissue background with smooth low-frequency shading, fine texture and
/// vignetting; a few specular highlights (bright, not lesions); 1-3 lesions — ellipses with
/// irregular (harmonic) boundaries, their own mottled texture, darker core and a blurred edge —
/// of varying size and contrast; then additive Gaussian noise. About 10% of images have no lesion.
/// Lesions differ from tissue in colour and texture, not only brightness: shading and vignetting
/// make the background as dark as a faint lesion in places, so one global threshold does not
/// solve it, but a small U-Net does.
///
/// Image `i` of a seed depends only on (seed, i, size, channels), never on `count`: a larger set
/// extends a smaller one.
public enum SyntheticDataset {
    /// Bumped whenever the generator's output changes, so cached sets are regenerated.
    public static let generatorVersion = 1
    /// Probability that an image has no lesion.
    public static let emptyProbability: Float = 0.1

    /// `count` samples of `size` x `size` with `channels` (3: RGB, 1: gray by luminance).
    public static func generate(count: Int, size: Int, seed: UInt64, channels: Int = 3) -> [SegmentationSample] {
        precondition(count >= 0, "SyntheticDataset.generate: count must be >= 0, got \(count)")
        precondition(size >= 8, "SyntheticDataset.generate: size must be >= 8, got \(size)")
        precondition(channels == 1 || channels == 3, "SyntheticDataset.generate: channels must be 1 or 3, got \(channels)")
        let width = nameWidth(count)
        // parallelMap only rethrows errors of its body, and this body throws none.
        return (try? parallelMap(count) { i in
            sample(index: i, size: size, seed: seed, channels: channels, name: paddedName(i, width: width))
        }) ?? []
    }

    /// Writes `count` samples as `dir/images/NNNN.png` (8-bit RGB or gray) and `dir/masks/NNNN.png`
    /// (8-bit gray, 0 or 255). Atomic: everything is written into a hidden temporary folder beside
    /// `dir`, then renamed to `dir`. An existing non-empty `dir` is refused, never overwritten.
    @discardableResult
    public static func write(to dir: String, count: Int, size: Int, seed: UInt64, channels: Int = 3) throws -> WriteResult {
        precondition(count > 0, "SyntheticDataset.write: count must be > 0, got \(count)")
        var dir = dir
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw DatasetError.fileSystem(path: dir, reason: "exists and is not a folder") }
            if let contents = try? fm.contentsOfDirectory(atPath: dir), !contents.isEmpty {
                throw DatasetError.outputNotEmpty(path: dir)
            }
        }
        let width = nameWidth(count)
        var written: [(pair: ImageMaskPair, foreground: Double)] = []
        let created: Bool
        do {
            created = try AtomicFile.writeDirectory(at: dir) { temporary in
                try AtomicFile.makeDirectory(temporary + "/images")
                try AtomicFile.makeDirectory(temporary + "/masks")
                written = try parallelMap(count) { i in
                    let name = paddedName(i, width: width)
                    let s = sample(index: i, size: size, seed: seed, channels: channels, name: name)
                    try PNGCodec.write(s.image, to: "\(temporary)/images/\(name).png")
                    try PNGCodec.write(s.mask, to: "\(temporary)/masks/\(name).png")
                    return (ImageMaskPair(name: name, image: "images/\(name).png", masks: ["masks/\(name).png"]), s.foregroundFraction)
                }
            }
        } catch let e as FileError {
            throw DatasetError.fileSystem(path: dir, reason: e.description)
        }
        // A racing writer finished first: the folder is there and not empty.
        if !created { throw DatasetError.outputNotEmpty(path: dir) }
        return WriteResult(pairs: written.map(\.pair),
                           meanForegroundFraction: written.map(\.foreground).reduce(0, +) / Double(count),
                           emptyMasks: written.filter { $0.foreground == 0 }.count)
    }

    /// What `write` produced: the pairs (paths relative to the folder) and mask statistics.
    public struct WriteResult: Sendable {
        public let pairs: [ImageMaskPair]
        /// Mean over images of the fraction of foreground pixels.
        public let meanForegroundFraction: Double
        /// Images without any lesion.
        public let emptyMasks: Int
    }

    /// A synthetic set on disk in the user's cache (`$XDG_CACHE_HOME/ranksweep`, else
    /// `~/.cache/ranksweep`), generated on first use and reused after; the folder name carries every
    /// parameter and the generator version. Two processes racing to create it both succeed.
    public static func cachedDefault(count: Int, size: Int, seed: UInt64, channels: Int = 3) throws -> String {
        let dir = cacheDirectory() + "/synth-v\(generatorVersion)-n\(count)-s\(size)-seed\(seed)-\(channels == 1 ? "gray" : "rgb")"
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir + "/masks", isDirectory: &isDir), isDir.boolValue { return dir }
        do {
            try write(to: dir, count: count, size: size, seed: seed, channels: channels)
        } catch DatasetError.outputNotEmpty {
            // Someone else finished it first (the rename is atomic, so it is complete) — or the
            // folder holds something else, which the loader will then report.
        }
        return dir
    }

    /// `$XDG_CACHE_HOME/ranksweep` when that is an absolute path, else `~/.cache/ranksweep`.
    public static func cacheDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/ranksweep" }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/ranksweep"
    }

    // MARK: - One image

    /// Colours of a tissue kind: background and lesion, in linear RGB [0, 1].
    private struct Palette {
        let tissue: (Float, Float, Float)
        let lesion: (Float, Float, Float)
    }

    private static let palettes: [Palette] = [
        Palette(tissue: (0.86, 0.52, 0.46), lesion: (0.62, 0.24, 0.27)),   // endoscopy: pink mucosa, red-purple lesion
        Palette(tissue: (0.88, 0.70, 0.60), lesion: (0.46, 0.30, 0.22)),   // dermoscopy: skin, brown naevus
        Palette(tissue: (0.80, 0.58, 0.62), lesion: (0.50, 0.30, 0.52)),   // stained tissue: pink, violet nuclei cluster
    ]

    /// Generates image `index` of the set `seed` (see the type's doc comment).
    static func sample(index: Int, size s: Int, seed: UInt64, channels: Int, name: String) -> SegmentationSample {
        var rng = SeededGenerator(seed: seed).derived(UInt64(index))
        let n = s * s
        let base = palettes[Int(rng.next() % UInt64(palettes.count))]
        func jitter(_ c: (Float, Float, Float), _ amount: Float) -> (Float, Float, Float) {
            (c.0 + rng.uniform(-amount, amount), c.1 + rng.uniform(-amount, amount), c.2 + rng.uniform(-amount, amount))
        }
        let tissue = jitter(base.tissue, 0.05), lesion = jitter(base.lesion, 0.05)

        // Background: shading (two octaves of smooth noise), fine texture, vignetting.
        let shadeA = valueNoise(size: s, cells: 3, rng: &rng), shadeB = valueNoise(size: s, cells: 6, rng: &rng)
        let grain = valueNoise(size: s, cells: max(2, s / 8), rng: &rng)
        let shadeAmount = rng.uniform(0.10, 0.22)
        let vignette = rng.uniform(0.15, 0.40)
        let cx = Float(s) * rng.uniform(0.4, 0.6), cy = Float(s) * rng.uniform(0.4, 0.6)
        let rMax2 = Float(s * s) / 2
        var rgb = [Float](repeating: 0, count: 3 * n)
        for y in 0..<s {
            for x in 0..<s {
                let p = y * s + x
                let dx = Float(x) - cx, dy = Float(y) - cy
                let v = 1 - vignette * min(1, (dx * dx + dy * dy) / rMax2)
                let shade = (1 + shadeAmount * (0.6 * shadeA[p] + 0.4 * shadeB[p])) * v
                let g = 0.035 * grain[p]
                rgb[3 * p] = tissue.0 * shade + g
                rgb[3 * p + 1] = tissue.1 * shade + g
                rgb[3 * p + 2] = tissue.2 * shade + g
            }
        }

        // Specular highlights: small bright spots that are not lesions.
        for _ in 0..<Int(rng.next() % 4) {
            let hx = rng.uniform(0, Float(s)), hy = rng.uniform(0, Float(s))
            let radius = Float(s) * rng.uniform(0.01, 0.03), strength = rng.uniform(0.3, 0.6)
            splat(&rgb, size: s, cx: hx, cy: hy, radius: 3 * radius) { d2 in
                strength * exp(-d2 / (2 * radius * radius))
            } apply: { value, w in value + (1 - value) * w }
        }

        // Lesions.
        var mask = [Float](repeating: 0, count: n)
        let lesionCount: Int
        if rng.nextUniform() < emptyProbability {
            lesionCount = 0
        } else {
            let u = rng.nextUniform()
            lesionCount = u < 0.5 ? 1 : (u < 0.8 ? 2 : 3)
        }
        let mottle = valueNoise(size: s, cells: max(2, s / 10), rng: &rng)
        for _ in 0..<lesionCount {
            drawLesion(&rgb, mask: &mask, size: s, lesion: lesion, mottle: mottle, rng: &rng)
        }

        // Sensor noise, then clamp.
        let sigma = rng.uniform(0.01, 0.035)
        for i in 0..<(3 * n) { rgb[i] = min(1, max(0, rgb[i] + sigma * rng.nextNormal())) }

        var image = Tensor(shape: [s, s, 3], storage: rgb)
        if channels == 1 { image = PNGCodec.convert(image, toChannels: 1) }
        return SegmentationSample(name: name, image: image, mask: Tensor(shape: [s, s, 1], storage: mask))
    }

    /// One lesion: an ellipse whose radius varies with angle by a few random harmonics; the mask is
    /// its inside, the image blends toward the lesion colour with a soft edge 1-3 px wide.
    private static func drawLesion(_ rgb: inout [Float], mask: inout [Float], size s: Int, lesion: (Float, Float, Float),
                                   mottle: [Float], rng: inout SeededGenerator) {
        let a = Float(s) * rng.uniform(0.09, 0.24)
        let b = a * rng.uniform(0.6, 1.0)
        let cx = Float(s) * rng.uniform(0.18, 0.82), cy = Float(s) * rng.uniform(0.18, 0.82)
        let angle = rng.uniform(0, 2 * .pi)
        let cosA = cos(angle), sinA = sin(angle)
        var harmonics: [(k: Float, amp: Float, phase: Float)] = []
        for k in 2...6 { harmonics.append((Float(k), rng.uniform(0, 0.16) / Float(k).squareRoot(), rng.uniform(0, 2 * .pi))) }
        let contrast = rng.uniform(0.55, 0.95)
        let edge = rng.uniform(1.0, 3.0)             // blur width in pixels
        let core = rng.uniform(0.0, 0.25)            // how much darker the centre is
        let tint = (lesion.0 * rng.uniform(0.9, 1.1), lesion.1 * rng.uniform(0.9, 1.1), lesion.2 * rng.uniform(0.9, 1.1))
        let reach = a * 1.6 + 2 * edge
        let x0 = max(0, Int(cx - reach)), x1 = min(s - 1, Int(cx + reach))
        let y0 = max(0, Int(cy - reach)), y1 = min(s - 1, Int(cy + reach))
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let dx = Float(x) + 0.5 - cx, dy = Float(y) + 0.5 - cy
                let u = (dx * cosA + dy * sinA) / a, v = (-dx * sinA + dy * cosA) / b
                let d = (u * u + v * v).squareRoot()
                let theta = atan2(v, u)
                var r: Float = 1
                for h in harmonics { r += h.amp * cos(h.k * theta + h.phase) }
                // Signed distance to the boundary in pixels, roughly (radial, scaled by the radius there).
                let signed = (r - d) * (b + (a - b) * abs(cos(theta)))
                let p = y * s + x
                if signed > 0 { mask[p] = 1 }
                let t = min(1, max(0, 0.5 + signed / edge))   // soft edge across ~edge pixels
                let alpha = contrast * t * t * (3 - 2 * t)
                guard alpha > 0 else { continue }
                let darker = 1 - core * max(0, 1 - d / max(r, 0.1)) + 0.18 * mottle[p]
                rgb[3 * p] += (tint.0 * darker - rgb[3 * p]) * alpha
                rgb[3 * p + 1] += (tint.1 * darker - rgb[3 * p + 1]) * alpha
                rgb[3 * p + 2] += (tint.2 * darker - rgb[3 * p + 2]) * alpha
            }
        }
    }

    /// Adds a radially weighted effect around (cx, cy) to every channel within `radius`.
    private static func splat(_ rgb: inout [Float], size s: Int, cx: Float, cy: Float, radius: Float,
                              weight: (Float) -> Float, apply: (Float, Float) -> Float) {
        let x0 = max(0, Int(cx - radius)), x1 = min(s - 1, Int(cx + radius))
        let y0 = max(0, Int(cy - radius)), y1 = min(s - 1, Int(cy + radius))
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let dx = Float(x) - cx, dy = Float(y) - cy
                let w = weight(dx * dx + dy * dy)
                let p = 3 * (y * s + x)
                for k in 0..<3 { rgb[p + k] = apply(rgb[p + k], w) }
            }
        }
    }

    /// Smooth noise in [-1, 1]: random values on a `cells` x `cells` grid, interpolated with a
    /// smoothstep so there are no visible grid lines.
    static func valueNoise(size s: Int, cells: Int, rng: inout SeededGenerator) -> [Float] {
        let g = cells + 1
        var grid = [Float](repeating: 0, count: g * g)
        for i in 0..<grid.count { grid[i] = rng.uniform(-1, 1) }
        let step = Float(cells) / Float(s)
        var out = [Float](repeating: 0, count: s * s)
        for y in 0..<s {
            let fy = (Float(y) + 0.5) * step
            let gy = min(cells - 1, Int(fy))
            var ty = fy - Float(gy)
            ty = ty * ty * (3 - 2 * ty)
            for x in 0..<s {
                let fx = (Float(x) + 0.5) * step
                let gx = min(cells - 1, Int(fx))
                var tx = fx - Float(gx)
                tx = tx * tx * (3 - 2 * tx)
                let v00 = grid[gy * g + gx], v01 = grid[gy * g + gx + 1]
                let v10 = grid[(gy + 1) * g + gx], v11 = grid[(gy + 1) * g + gx + 1]
                let top = v00 + (v01 - v00) * tx, bottom = v10 + (v11 - v10) * tx
                out[y * s + x] = top + (bottom - top) * ty
            }
        }
        return out
    }

    private static func nameWidth(_ count: Int) -> Int { max(4, String(max(0, count - 1)).count) }

    private static func paddedName(_ i: Int, width: Int) -> String {
        let digits = String(i)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
