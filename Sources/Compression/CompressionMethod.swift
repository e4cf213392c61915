import Foundation

/// A bad compression request (user input: a rank, a threshold, an image size). Its description is
/// the one-line message a command prints.
public struct CompressionError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How a Tucker-2 or spatial-SVD factorisation picks a rank from the singular values of one matrix
/// (for Tucker-2, each channel unfolding separately). A pure function of the kernel.
///
/// Spelled `16` (fixed), `0.25` (fraction of the channels), `auto` (VBMF), or given as a tau.
public enum RankRule: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// `min(rank, numerical rank)`, as `svd` does.
    case fixed(Int)
    /// `ceil(fraction * channels)` for a fraction in (0, 1), capped at the numerical rank.
    case fraction(Double)
    /// The smallest rank keeping a fraction `tau` of the energy `Σ s_i²`, as `arsvd` does.
    case energy(tau: Double)
    /// Empirical variational Bayesian matrix factorisation (`VBMF`): the rank the data supports.
    case vbmf

    /// A rule from its spelling: `rank` ("16", "0.25", "auto") or `tau`, exactly one of them.
    public init(method: String, rank: String?, tau: Double?) throws(CompressionError) {
        switch (rank, tau) {
        case (nil, nil): throw CompressionError("method \(method) needs --rank R (an integer, a fraction in (0, 1) or auto) or --tau T")
        case (.some, .some): throw CompressionError("method \(method) takes a rank or a tau, not both")
        case (nil, let tau?): self = .energy(tau: tau)
        case (let text?, nil):
            let t = text.trimmingCharacters(in: .whitespaces).lowercased()
            if t == "auto" { self = .vbmf }
            else if let r = Int(t) { self = .fixed(r) }
            else if let f = Double(t), f > 0, f < 1 { self = .fraction(f) }
            else { throw CompressionError("rank must be a positive integer, a fraction in (0, 1) or auto, got '\(text)'") }
        }
        try validate()
    }

    public func validate() throws(CompressionError) {
        switch self {
        case .fixed(let r): guard r > 0 else { throw CompressionError("rank must be a positive integer, got \(r)") }
        case .fraction(let f): guard f > 0 && f < 1 else { throw CompressionError("rank fraction must be in (0, 1), got \(f)") }
        case .energy(let tau): guard tau > 0 && tau <= 1 else { throw CompressionError("tau must be in (0, 1], got \(tau)") }
        case .vbmf: break
        }
    }

    /// The rank for a matrix with decomposition `svd` whose factor has `channels` channels (at least 1, at most `k`).
    public func rank(for svd: SingularValueDecomposition, channels: Int) -> Int {
        let chosen: Int
        switch self {
        case .fixed(let r): chosen = min(r, svd.numericalRank)
        case .fraction(let f): chosen = min(Int((f * Double(channels)).rounded(.up)), svd.numericalRank)
        case .energy(let tau): chosen = CompressionMethod.arsvd(tau: tau).rank(for: svd)
        case .vbmf: chosen = VBMF.rank(singularValues: svd.singularValues, rows: svd.rows, columns: svd.columns)
        }
        return max(1, min(chosen, svd.k))
    }

    /// `16`, `0.25`, `auto` (a tau is not a rank: see `CompressionMethod.description`).
    public var description: String {
        switch self {
        case .fixed(let r): "\(r)"
        case .fraction(let f): "\(f)"
        case .energy(let tau): "tau=\(tau)"
        case .vbmf: "auto"
        }
    }

    /// The job-id and folder part: `r16`, `r0.25`, `rauto`, `tau0.9`.
    public var slug: String {
        switch self {
        case .energy(let tau): "tau\(tau)"
        default: "r\(description)"
        }
    }
}

/// How each eligible layer is factorised and its rank chosen.
///
/// Saved in results as `{"method": "svd", "rank": 50}`, `{"method": "arsvd", "tau": 0.9}`,
/// `{"method": "tucker2", "rank": 16}` (or `0.25`, `"auto"`, or `"tau": 0.9`), `{"method": "spatial-svd", "rank": 8}`.
public enum CompressionMethod: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Fixed rank: every eligible layer gets `min(rank, numerical rank of its kernel)`.
    case svd(rank: Int)
    /// Adaptive rank: every eligible layer gets the smallest `r` whose leading singular values hold
    /// at least a fraction `tau` of the kernel's energy, `Σ_{i≤r} s_i² / Σ s_i² ≥ tau`, `tau ∈ (0, 1]`.
    case arsvd(tau: Double)
    /// Tucker-2 (`Tucker2Conv2D`): ranks `r1`, `r2` chosen by the rule on each channel unfolding.
    case tucker2(RankRule)
    /// Spatial SVD (`SpatialSVDConv2D`): the rank chosen by the rule on the `(kh*cin) x (kw*cout)` matrix.
    case spatialSVD(RankRule)
    /// A method and rank per layer (`LayerPlan`: a budget allocation, or a uniform setting written
    /// out layer by layer); layers it does not list stay full. Read from a file, never spelled on
    /// the command line.
    case allocated(LayerPlan)

    /// Every method's name, as spelled on the command line and in files.
    public static let names = ["svd", "arsvd", "tucker2", "spatial-svd"]

    /// A method from its command-line spelling (`svd` with `rank`, `arsvd` with `tau`, `tucker2` and
    /// `spatial-svd` with either), validated.
    public init(name: String, rankText rank: String?, tau: Double?) throws(CompressionError) {
        switch name.lowercased() {
        case "svd":
            guard let rank else { throw CompressionError("method svd needs a rank (--rank R)") }
            guard tau == nil else { throw CompressionError("method svd takes a rank, not a tau") }
            guard let r = Int(rank.trimmingCharacters(in: .whitespaces)) else {
                throw CompressionError("method svd needs an integer rank, got '\(rank)'")
            }
            self = .svd(rank: r)
        case "arsvd":
            guard let tau else { throw CompressionError("method arsvd needs an energy threshold (--tau T)") }
            guard rank == nil else { throw CompressionError("method arsvd takes a tau, not a rank") }
            self = .arsvd(tau: tau)
        case "tucker2":
            self = .tucker2(try RankRule(method: "tucker2", rank: rank, tau: tau))
        case "spatial-svd":
            self = .spatialSVD(try RankRule(method: "spatial-svd", rank: rank, tau: tau))
        default:
            throw CompressionError("unknown compression method '\(name)' (use \(CompressionMethod.names.joined(separator: ", ")))")
        }
        try validate()
    }

    /// The same with an integer rank (`svd --rank 50`).
    public init(name: String, rank: Int?, tau: Double?) throws(CompressionError) {
        try self.init(name: name, rankText: rank.map(String.init), tau: tau)
    }

    /// Throws with a clear message when the rank is not positive or tau is outside (0, 1].
    public func validate() throws(CompressionError) {
        switch self {
        case .svd(let rank):
            guard rank > 0 else { throw CompressionError("rank must be a positive integer, got \(rank)") }
        case .arsvd(let tau):
            // Written so that NaN fails too.
            guard tau > 0 && tau <= 1 else { throw CompressionError("tau must be in (0, 1], got \(tau)") }
        case .tucker2(let rule), .spatialSVD(let rule):
            try rule.validate()
        case .allocated(let plan):
            try plan.validate()
        }
    }

    /// The rank this method asks for on a kernel with decomposition `svd` (at least 1, at most `k`).
    ///
    /// `svd`: `min(rank, numerical rank)` — ranks past the numerical rank would only add factors
    /// for rounding noise. `arsvd`: the first `r` whose energy fraction reaches `tau`; at `tau = 1`
    /// that is the last non-zero singular value. A zero kernel gets rank 1 (a layer needs one channel).
    /// Tucker-2 and spatial SVD: their rule on `svd` (`svd.columns` taken as the channel count).
    public func rank(for svd: SingularValueDecomposition) -> Int {
        switch self {
        case .svd(let rank):
            return max(1, min(rank, svd.numericalRank))
        case .arsvd(let tau):
            let cumulative = svd.cumulativeEnergy
            guard let total = cumulative.last, total > 0 else { return 1 }
            return (cumulative.firstIndex { $0 / total >= tau } ?? (svd.k - 1)) + 1
        case .tucker2(let rule), .spatialSVD(let rule):
            return rule.rank(for: svd, channels: svd.columns)
        case .allocated:
            // A plan has no one rank: ModelCompressor asks each layer's own method.
            return svd.k
        }
    }

    /// `svd`, `arsvd`, `tucker2` or `spatial-svd`.
    public var name: String {
        switch self {
        case .svd: "svd"
        case .arsvd: "arsvd"
        case .tucker2: "tucker2"
        case .spatialSVD: "spatial-svd"
        case .allocated: "allocated"
        }
    }

    /// The setting alone: `r=50`, `tau=0.9`, `r=auto`.
    public var setting: String {
        switch self {
        case .svd(let rank): "r=\(rank)"
        case .arsvd(let tau): "tau=\(tau)"
        case .tucker2(let rule), .spatialSVD(let rule):
            if case .energy = rule { rule.description } else { "r=\(rule)" }
        case .allocated(let plan): plan.label
        }
    }

    /// `svd r=50`, `arsvd tau=0.9`, `tucker2 r=auto`, `spatial-svd r=8`.
    public var description: String {
        if case .allocated(let plan) = self { return plan.label }
        return "\(name) \(setting)"
    }

    /// Folder and job-id part: `svd_r50`, `arsvd_tau0.9`, `tucker2_r16`, `spatial-svd_rauto`.
    public var slug: String {
        switch self {
        case .svd(let rank): "svd_r\(rank)"
        case .arsvd(let tau): "arsvd_tau\(tau)"
        case .tucker2(let rule), .spatialSVD(let rule): "\(name)_\(rule.slug)"
        case .allocated(let plan): plan.slug
        }
    }
}

extension CompressionMethod: Codable {
    private enum CodingKeys: String, CodingKey { case method, rank, tau, plan }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .method)
        if name == "allocated" {
            let plan = try c.decode(LayerPlan.self, forKey: .plan)
            do { try plan.validate() } catch {
                throw DecodingError.dataCorruptedError(forKey: .plan, in: c, debugDescription: error.message)
            }
            self = .allocated(plan)
            return
        }
        // A rank is an integer, a fraction or "auto".
        var rank: String?
        if c.contains(.rank) {
            if let r = try? c.decode(Int.self, forKey: .rank) { rank = String(r) }
            else if let f = try? c.decode(Double.self, forKey: .rank) { rank = String(f) }
            else if let t = try? c.decode(String.self, forKey: .rank) { rank = t }
            else { throw DecodingError.dataCorruptedError(forKey: .rank, in: c, debugDescription: "rank must be an integer, a fraction or \"auto\"") }
        }
        do {
            try self.init(name: name, rankText: rank, tau: try c.decodeIfPresent(Double.self, forKey: .tau))
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
        case .tucker2(let rule), .spatialSVD(let rule):
            switch rule {
            case .fixed(let r): try c.encode(r, forKey: .rank)
            case .fraction(let f): try c.encode(f, forKey: .rank)
            case .energy(let tau): try c.encode(tau, forKey: .tau)
            case .vbmf: try c.encode("auto", forKey: .rank)
            }
        case .allocated(let plan): try c.encode(plan, forKey: .plan)
        }
    }
}

/// A compression method per layer: what a budget allocation chose (or a uniform setting written out
/// layer by layer, to compare with it on equal terms). Layers it does not list stay full.
public struct LayerPlan: Codable, Sendable, Equatable, Hashable {
    public struct Entry: Codable, Sendable, Equatable, Hashable {
        /// The convolution's name (`enc1_conv2`).
        public var layer: String
        /// A single-layer method with a fixed rank (`svd r=8`, `tucker2 r=12`).
        public var method: CompressionMethod
        public init(layer: String, method: CompressionMethod) { self.layer = layer; self.method = method }
    }

    /// What the plan is, for tables: `params 15%` (an allocation), `params 15% r=12` (uniform SVD at that budget).
    public var label: String
    /// The folder and id part: `budget-p0.15`.
    public var slug: String
    public var entries: [Entry]

    public init(label: String, slug: String, entries: [Entry]) {
        self.label = label; self.slug = slug; self.entries = entries
    }

    /// The method this plan gives the layer, nil when it stays full.
    public func method(forLayer name: String) -> CompressionMethod? {
        entries.first { $0.layer == name }?.method
    }

    public func validate() throws(CompressionError) {
        var seen = Set<String>()
        for e in entries {
            guard seen.insert(e.layer).inserted else { throw CompressionError("plan \(label): layer \(e.layer) is listed twice") }
            if case .allocated = e.method { throw CompressionError("plan \(label): layer \(e.layer) holds a plan, not a method") }
            try e.method.validate()
        }
    }
}
