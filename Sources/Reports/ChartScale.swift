import Foundation

/// A linear map from data values to pixels, with "nice" tick values (1, 2, 2.5, 5 x 10^k).
public struct LinearScale: Sendable {
    public var lower: Double
    public var upper: Double
    /// Pixel positions of `lower` and `upper` (for a y axis, `from` is the bottom).
    public var from: Double
    public var to: Double

    public init(lower: Double, upper: Double, from: Double, to: Double) {
        self.lower = lower; self.upper = upper; self.from = from; self.to = to
    }

    public func callAsFunction(_ v: Double) -> Double {
        upper == lower ? (from + to) / 2 : from + (v - lower) / (upper - lower) * (to - from)
    }

    /// About `count` round values inside [lower, upper].
    public func ticks(_ count: Int = 5) -> [Double] {
        let step = LinearScale.niceStep((upper - lower) / Double(max(1, count)))
        guard step > 0, step.isFinite else { return [lower] }
        var out: [Double] = []
        var v = (lower / step).rounded(.up) * step
        while v <= upper + step * 1e-9 && out.count < 50 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 2.5, 5, 10] where m * p >= raw { return m * p }
        return 10 * p
    }

    /// A padded domain covering `values` (and `including`), rounded out to nice steps.
    /// `within`: bounds the domain never crosses (Dice stays in [0, 1], a reduction above 0).
    public static func domain(_ values: [Double], including extra: [Double] = [], pad: Double = 0.05,
                              within: (Double, Double) = (-.infinity, .infinity)) -> (Double, Double) {
        let (lo, hi) = unclamped(values, including: extra, pad: pad)
        return (max(lo, within.0), min(hi, within.1))
    }

    static func unclamped(_ values: [Double], including extra: [Double], pad: Double) -> (Double, Double) {
        let all = (values + extra).filter { $0.isFinite }
        guard var lo = all.min(), var hi = all.max() else { return (0, 1) }
        if hi - lo < 1e-12 { lo -= max(abs(lo) * 0.1, 0.05); hi += max(abs(hi) * 0.1, 0.05) }
        let span = hi - lo
        lo -= span * pad; hi += span * pad
        let step = niceStep(span / 5)
        return ((lo / step).rounded(.down) * step, (hi / step).rounded(.up) * step)
    }

    /// Tick label: as few decimals as the tick step needs.
    public static func label(_ v: Double, step: Double) -> String {
        let decimals = step >= 1 ? 0 : min(6, Int(ceil(-log10(step) - 1e-9)) + (step * pow(10, ceil(-log10(step) - 1e-9)) == 2.5 ? 1 : 0))
        return String(format: "%.\(decimals)f", v)
    }
}

/// A rectangle in pixels: where a panel draws its data.
public struct PlotRect: Sendable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public var right: Double { x + width }
    public var bottom: Double { y + height }
}

/// Colours used across the report (colour-blind-safe Tableau/Okabe-Ito tones).
public enum Palette {
    public static let svd = "#0072B2"
    public static let arsvd = "#E69F00"
    public static let baseline = "#444444"
    public static let front = "#009E73"
    public static let threshold = "#CC79A7"
    public static let grid = "#e3e3e3"
    public static let axis = "#555555"
    /// Distinct colours for many series (lines of several jobs).
    public static let series = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#999933", "#882255", "#44AA99", "#332288"]

    public static let tucker2 = "#D55E00"
    public static let spatialSVD = "#882255"

    /// How one compression method is drawn in every chart: its own colour and marker shape.
    public struct MethodStyle: Sendable {
        public let name: String
        public let label: String
        public let colour: String
        public let shape: MarkerShape
    }

    /// Every method, in the order legends list them.
    public static let methods = [
        MethodStyle(name: "svd", label: "SVD (fixed rank)", colour: svd, shape: .circle),
        MethodStyle(name: "arsvd", label: "ARSVD (energy tau)", colour: arsvd, shape: .triangle),
        MethodStyle(name: "tucker2", label: "Tucker-2", colour: tucker2, shape: .square),
        MethodStyle(name: "spatial-svd", label: "spatial SVD", colour: spatialSVD, shape: .diamond),
        MethodStyle(name: "budget", label: "budget allocation (per-layer ranks)", colour: "#117733", shape: .square),
        MethodStyle(name: "uniform-svd", label: "uniform SVD at the budget", colour: "#56B4E9", shape: .circle),
    ]

    public static func method(_ name: String) -> String {
        methods.first { $0.name == name }?.colour ?? baseline
    }

    public static func marker(_ name: String) -> MarkerShape {
        methods.first { $0.name == name }?.shape ?? .circle
    }
}
