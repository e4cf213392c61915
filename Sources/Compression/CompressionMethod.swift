/// A bad compression request (user input: a rank, a threshold, an image size). Its description is
/// the one-line message a command prints.
public struct CompressionError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How each eligible layer's rank is chosen.
///
/// Saved in results as `{"method": "svd", "rank": 50}` or `{"method": "arsvd", "tau": 0.9}`.
public enum CompressionMethod: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Fixed rank: every eligible layer gets `min(rank, numerical rank of its kernel)`.
    case svd(rank: Int)
    /// Adaptive rank: every eligible layer gets the smallest `r` whose leading singular values hold
    /// at least a fraction `tau` of the kernel's energy, `Σ_{i≤r} s_i² / Σ s_i² ≥ tau`, `tau ∈ (0, 1]`.
    case arsvd(tau: Double)

    /// A method from its command-line spelling (`svd` with `rank`, `arsvd` with `tau`), validated.
    public init(name: String, rank: Int?, tau: Double?) throws(CompressionError) {
        switch name.lowercased() {
        case "svd":
            guard let rank else { throw CompressionError("method svd needs a rank (--rank R)") }
            guard tau == nil else { throw CompressionError("method svd takes a rank, not a tau") }
            self = .svd(rank: rank)
        case "arsvd":
            guard let tau else { throw CompressionError("method arsvd needs an energy threshold (--tau T)") }
            guard rank == nil else { throw CompressionError("method arsvd takes a tau, not a rank") }
            self = .arsvd(tau: tau)
        default:
            throw CompressionError("unknown compression method '\(name)' (use svd or arsvd)")
        }
        try validate()
    }

    /// Throws with a clear message when the rank is not positive or tau is outside (0, 1].
    public func validate() throws(CompressionError) {
        switch self {
        case .svd(let rank):
            guard rank > 0 else { throw CompressionError("rank must be a positive integer, got \(rank)") }
        case .arsvd(let tau):
            // Written so that NaN fails too.
            guard tau > 0 && tau <= 1 else { throw CompressionError("tau must be in (0, 1], got \(tau)") }
        }
    }

    /// The rank this method asks for on a kernel with decomposition `svd` (at least 1, at most `k`).
    ///
    /// `svd`: `min(rank, numerical rank)` — ranks past the numerical rank would only add factors
    /// for rounding noise. `arsvd`: the first `r` whose energy fraction reaches `tau`; at `tau = 1`
    /// that is the last non-zero singular value. A zero kernel gets rank 1 (a layer needs one channel).
    public func rank(for svd: SingularValueDecomposition) -> Int {
        switch self {
        case .svd(let rank):
            return max(1, min(rank, svd.numericalRank))
        case .arsvd(let tau):
            let cumulative = svd.cumulativeEnergy
            guard let total = cumulative.last, total > 0 else { return 1 }
            return (cumulative.firstIndex { $0 / total >= tau } ?? (svd.k - 1)) + 1
        }
    }

    /// `svd` or `arsvd`.
    public var name: String {
        switch self {
        case .svd: "svd"
        case .arsvd: "arsvd"
        }
    }

    /// `svd r=50`, `arsvd tau=0.9`.
    public var description: String {
        switch self {
        case .svd(let rank): "svd r=\(rank)"
        case .arsvd(let tau): "arsvd tau=\(tau)"
        }
    }
}

extension CompressionMethod: Codable {
    private enum CodingKeys: String, CodingKey { case method, rank, tau }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .method)
        do {
            try self.init(name: name, rank: try c.decodeIfPresent(Int.self, forKey: .rank),
                          tau: try c.decodeIfPresent(Double.self, forKey: .tau))
        } catch let error as CompressionError {
            throw DecodingError.dataCorruptedError(forKey: .method, in: c, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .method)
        switch self {
        case .svd(let rank): try c.encode(rank, forKey: .rank)
        case .arsvd(let tau): try c.encode(tau, forKey: .tau)
        }
    }
}
