import Foundation

/// What compression did with one convolution, and why. One per convolution slot of the model, in
/// forward order; written to the per-layer table and `result.json`.
public struct LayerDecision: Codable, Sendable, Equatable {
    /// Why a layer was kept full.
    public enum SkipReason: Codable, Sendable, Equatable, CustomStringConvertible {
        /// The 1x1 -> 1 output head: never factorised (it has `cin + 1` weights, nothing to save).
        case outputHead
        /// The slot already holds a factorised pair (compressing a compressed model).
        case alreadyFactorised(rank: Int)
        /// The chosen rank would not save parameters: `rank >= breakEven`.
        case pastBreakEven(rank: Int, breakEven: Double)
        /// A convolution type compression does not know how to factorise.
        case unsupportedLayer(type: String)
        /// The latency profile given (`LatencyProfile`, measured on the deployment target) times the
        /// pair no faster than the full layer: fewer FLOPs that run slower are no win.
        case slowerThanFull(fullMs: Double, factorisedMs: Double)
        /// A per-layer plan (`LayerPlan`, e.g. a budget allocation) keeps this layer full.
        case keptFullByPlan

        public var description: String {
            switch self {
            case .outputHead: "output head"
            case .alreadyFactorised(let rank): "already factorised (rank \(rank))"
            case .pastBreakEven(let rank, let breakEven):
                "rank \(rank) >= break-even \(String(format: "%.2f", breakEven))"
            case .unsupportedLayer(let type): "unsupported layer type \(type)"
            case .slowerThanFull(let full, let factorised):
                String(format: "factorised not faster: %.3f ms/image vs full %.3f (latency profile)", factorised, full)
            case .keptFullByPlan: "kept full by the plan"
            }
        }
    }

    /// Layer name as saved (`enc1_conv2`).
    public var name: String
    /// HWIO `[kh, kw, cin, cout]`.
    public var kernelShape: [Int]
    /// `min(kh*kw*cin, cout)`: the largest rank the kernel matrix can have.
    public var fullRank: Int
    /// Singular values above float32 noise (see `SingularValueDecomposition.numericalRank`); nil when
    /// the kernel was not decomposed (already factorised).
    public var numericalRank: Int?
    /// `kh*kw*cin*cout / (kh*kw*cin + cout)`: ranks at or above it save nothing.
    public var breakEvenRank: Double
    /// The rank the method asked for on this layer (nil for the head and already factorised layers).
    public var chosenRank: Int?
    /// The rank in the compressed model (nil when the layer stayed a full convolution).
    public var rank: Int?
    /// Fraction of the kernel's energy `Σ s_i²` the compressed model keeps: 1 for a layer kept full.
    public var energyKept: Double
    /// Energy the chosen rank would keep, also for a layer kept full past break-even (nil when not
    /// decomposed): lets a report show what the method asked for.
    public var energyAtChosenRank: Double?
    /// Weights (kernel + bias) of this slot before and after.
    public var parametersBefore: Int
    public var parametersAfter: Int
    /// Forward FLOPs (2 x multiply-adds) of this slot for one image at the model's image size.
    public var flopsBefore: Int
    public var flopsAfter: Int
    public var factorised: Bool
    /// Why the layer was kept full (nil when factorised).
    public var skipReason: SkipReason?
    /// Inference CPU milliseconds per image of the full layer and of the factorised pair, from the
    /// latency profile given (nil without one, or when no pair was considered).
    public var measuredFullMs: Double?
    public var measuredFactorisedMs: Double?
    /// The kernel's singular values, descending (empty when not decomposed): the energy curve.
    /// For spatial SVD those of its `(kh*cin) x (kw*cout)` matrix; for Tucker-2 those of the
    /// output-channel unfolding (the same as SVD's).
    public var singularValues: [Float]
    /// Tucker-2 only: `chosenRank`/`rank` are the input-channel rank `r1`, these the output-channel
    /// rank `r2` asked for and used (nil for the other methods).
    public var chosenOutputRank: Int?
    public var outputRank: Int?

    /// `16`, or `12x16` for Tucker-2 (`r1 x r2`); "" when kept full.
    public var rankText: String {
        guard let rank else { return "" }
        return outputRank.map { "\(rank)x\($0)" } ?? "\(rank)"
    }

    /// `skipReason` as the one-line text a table shows ("" when factorised).
    public var skipReasonText: String { skipReason?.description ?? "" }
}

/// Saved as `{"kind": "pastBreakEven", "text": "rank 50 >= break-even 23.35", "rank": 50, "breakEven": 23.35}`,
/// so a report can print the text without knowing the cases.
extension LayerDecision.SkipReason {
    private enum CodingKeys: String, CodingKey { case kind, text, rank, breakEven, type, fullMs, factorisedMs }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(description, forKey: .text)
        switch self {
        case .outputHead:
            try c.encode("outputHead", forKey: .kind)
        case .alreadyFactorised(let rank):
            try c.encode("alreadyFactorised", forKey: .kind)
            try c.encode(rank, forKey: .rank)
        case .pastBreakEven(let rank, let breakEven):
            try c.encode("pastBreakEven", forKey: .kind)
            try c.encode(rank, forKey: .rank)
            try c.encode(breakEven, forKey: .breakEven)
        case .unsupportedLayer(let type):
            try c.encode("unsupportedLayer", forKey: .kind)
            try c.encode(type, forKey: .type)
        case .slowerThanFull(let full, let factorised):
            try c.encode("slowerThanFull", forKey: .kind)
            try c.encode(full, forKey: .fullMs)
            try c.encode(factorised, forKey: .factorisedMs)
        case .keptFullByPlan:
            try c.encode("keptFullByPlan", forKey: .kind)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "outputHead": self = .outputHead
        case "alreadyFactorised": self = .alreadyFactorised(rank: try c.decode(Int.self, forKey: .rank))
        case "pastBreakEven":
            self = .pastBreakEven(rank: try c.decode(Int.self, forKey: .rank),
                                  breakEven: try c.decode(Double.self, forKey: .breakEven))
        case "unsupportedLayer": self = .unsupportedLayer(type: try c.decode(String.self, forKey: .type))
        case "slowerThanFull":
            self = .slowerThanFull(fullMs: try c.decode(Double.self, forKey: .fullMs),
                                   factorisedMs: try c.decode(Double.self, forKey: .factorisedMs))
        case "keptFullByPlan": self = .keptFullByPlan
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown skip reason '\(other)'")
        }
    }
}
