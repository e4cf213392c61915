import Basics
import Engine
import Foundation

/// Measured inference latency of every convolution slot of one model and of its factorised pairs at
/// a ladder of ranks, on one machine: the explicit input that makes compression latency-aware.
///
/// Compression never times anything on its own: which layers are factorised depends only on the
/// model, the method and (when given) this file, so the same job writes the same bytes on any host
/// at any load. `ranksweep profile-layers` writes it on the deployment target; `compress
/// --latency-profile` and a sweep's `compression.latency_profile` read it (a sweep ships it to every
/// worker as an artifact). A pair whose profiled time is not below its full layer's keeps the layer
/// full (`LayerDecision.SkipReason.slowerThanFull`). Between profiled ranks the time is interpolated
/// linearly; past the last, the last is used.
public struct LatencyProfile: Codable, Sendable, Equatable {
    /// One convolution slot: the full layer's time and the pair's at each profiled rank.
    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        /// HWIO `[kh, kw, cin, cout]` of the full layer: a profile of another architecture is refused.
        public var kernelShape: [Int]
        /// Side of the square feature map the layer runs on.
        public var inputSize: Int
        /// CPU milliseconds per image of the full layer (BatchNorm folded in, as inference runs it).
        public var fullMs: Double
        /// Smallest and largest round median of the full layer (the spread of `fullMs`).
        public var fullSpreadMs: [Double]
        /// Per pair family (`CompressionMethod.pairFamily`: `svd` for svd and arsvd, `tucker2` profiled
        /// at r1 = r2, `spatial-svd`), ascending ranks.
        public var pairs: [String: [Point]]

        public init(name: String, kernelShape: [Int], inputSize: Int, fullMs: Double, fullSpreadMs: [Double], pairs: [String: [Point]]) {
            self.name = name; self.kernelShape = kernelShape; self.inputSize = inputSize
            self.fullMs = fullMs; self.fullSpreadMs = fullSpreadMs; self.pairs = pairs
        }
    }

    /// One profiled rank: its median CPU milliseconds per image and the min-max of its round medians.
    public struct Point: Codable, Sendable, Equatable {
        public var rank: Int
        public var ms: Double
        public var spreadMs: [Double]

        public init(rank: Int, ms: Double, spreadMs: [Double]) { self.rank = rank; self.ms = ms; self.spreadMs = spreadMs }
    }

    public static let schema = 1
    public var schema = LatencyProfile.schema
    /// Where it was measured: a report names the target the decisions were made for.
    public var host: String
    public var cpu: String
    public var blasCore: String
    public var threads: Int
    public var batch: Int
    public var runs: Int
    public var imageSize: Int
    public var createdAt: String
    public var layers: [Layer]

    public init(host: String, cpu: String, blasCore: String, threads: Int, batch: Int, runs: Int, imageSize: Int, createdAt: String, layers: [Layer]) {
        self.host = host; self.cpu = cpu; self.blasCore = blasCore; self.threads = threads; self.batch = batch
        self.runs = runs; self.imageSize = imageSize; self.createdAt = createdAt; self.layers = layers
    }

    /// The profile in `path`, checked: a file that is not one says so, naming the path.
    public static func read(path: String) throws(CompressionError) -> LatencyProfile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CompressionError("latency profile \(path): cannot read it (\(error.localizedDescription))")
        }
        let profile: LatencyProfile
        do { profile = try JSONDecoder().decode(LatencyProfile.self, from: data) } catch {
            throw CompressionError("latency profile \(path): not a profile written by `ranksweep profile-layers` (\(Self.reason(error)))")
        }
        guard profile.schema == schema else {
            throw CompressionError("latency profile \(path): schema \(profile.schema), this ranksweep reads \(schema)")
        }
        for layer in profile.layers {
            guard layer.fullMs.isFinite, layer.fullMs >= 0, layer.pairs.values.allSatisfy({ points in
                !points.isEmpty && points.allSatisfy { $0.rank >= 1 && $0.ms.isFinite && $0.ms >= 0 }
                    && zip(points, points.dropFirst()).allSatisfy { $0.rank < $1.rank }
            }) else {
                throw CompressionError("latency profile \(path): layer \(layer.name) has a negative, non-finite or unordered time")
            }
        }
        return profile
    }

    private static func reason(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "no '\(key.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            c.codingPath.map(\.stringValue).joined(separator: ".") + ": " + c.debugDescription
        default: "\(error)"
        }
    }

    /// The profile's entry for `layer` at `inputSize`, or an error when the profile was made for
    /// another model or image size.
    func entry(for layer: any ConvolutionLayer, inputSize: Int) throws(CompressionError) -> Layer {
        let shape = [layer.kernelHeight, layer.kernelWidth, layer.inChannels, layer.outChannels]
        guard let e = layers.first(where: { $0.name == layer.name }) else {
            throw CompressionError("latency profile (\(host)) has no layer \(layer.name): it was made for another model")
        }
        guard e.kernelShape == shape, e.inputSize == inputSize else {
            throw CompressionError("latency profile (\(host)) was made for another model: layer \(layer.name) is "
                + "\(e.kernelShape.map(String.init).joined(separator: "x")) at \(e.inputSize) px there, "
                + "\(shape.map(String.init).joined(separator: "x")) at \(inputSize) px here")
        }
        return e
    }

    /// Throws unless the profile has an entry for every factorisable slot of `model` at `imageSize`
    /// (what `compress` will look up): a sweep checks its profile before any job runs.
    public func check(fits model: UNet, imageSize: Int) throws(CompressionError) {
        for slot in ModelCompressor.convolutionSlots(of: model, imageSize: imageSize) where !slot.isHead && slot.layer is Conv2D {
            _ = try entry(for: slot.layer, inputSize: slot.size)
        }
    }

    /// The profiled time of a pair of `family` at `rank`: linear between the neighbouring profiled
    /// ranks, the nearest end outside them.
    static func interpolate(_ points: [Point], rank: Int) -> Double {
        guard let upper = points.firstIndex(where: { $0.rank >= rank }) else { return points.last!.ms }
        if upper == 0 || points[upper].rank == rank { return points[upper].ms }
        let a = points[upper - 1], b = points[upper]
        let t = Double(rank - a.rank) / Double(b.rank - a.rank)
        return a.ms + t * (b.ms - a.ms)
    }

    /// `(fullMs, pairMs)` for `layer` replaced by a `family` pair of rank `rank`.
    func times(for layer: any ConvolutionLayer, inputSize: Int, family: String, rank: Int) throws(CompressionError) -> (fullMs: Double, factorisedMs: Double) {
        let e = try entry(for: layer, inputSize: inputSize)
        guard let points = e.pairs[family] else {
            throw CompressionError("latency profile (\(host)) has no \(family) pairs for layer \(layer.name): run `ranksweep profile-layers` again")
        }
        return (e.fullMs, Self.interpolate(points, rank: rank))
    }
}

/// Writes a `LatencyProfile`: every convolution slot and its pairs timed on this machine.
public enum LatencyProfiler {
    /// The ranks profiled for a layer whose pair breaks even at `breakEven`: powers of two below it
    /// and the last rank that still saves parameters.
    public static func ladder(breakEven: Double) -> [Int] {
        let last = Int(breakEven.rounded(.up)) - 1
        guard last >= 1 else { return [] }
        var ranks: [Int] = []
        var r = 1
        while r < last { ranks.append(r); r *= 2 }
        ranks.append(last)
        return ranks
    }

    /// Times every slot of `model` (images of `imageSize`) against its pairs of each family at
    /// `ranks` (nil: each family's `ladder`), each pair interleaved with its full layer in `rounds`
    /// rounds of `timing.runs`; `progress(done, total, layer)` after each layer.
    public static func profile(model: UNet, imageSize: Int, timing: LayerTiming = LayerTiming(), rounds: Int = 3,
                               ranks: [Int]? = nil, host: String, cpu: String,
                               progress: (Int, Int, String) -> Void = { _, _, _ in }) throws(CompressionError) -> LatencyProfile {
        try timing.validate()
        guard rounds >= 1 else { throw CompressionError("profile: rounds must be at least 1, got \(rounds)") }
        let multiple = 1 << model.config.depth
        guard imageSize > 0 && imageSize % multiple == 0 else {
            throw CompressionError("image size \(imageSize) must be a positive multiple of \(multiple) for a depth-\(model.config.depth) U-Net")
        }
        let slots = ModelCompressor.convolutionSlots(of: model, imageSize: imageSize).filter { !$0.isHead && $0.layer is Conv2D }
        var layers: [LatencyProfile.Layer] = []
        for (index, slot) in slots.enumerated() {
            let full = slot.layer as! Conv2D
            let rows = full.kernelHeight * full.kernelWidth * full.inChannels
            let fullWeights = rows * full.outChannels
            let area = full.kernelHeight * full.kernelWidth
            let svd: SingularValueDecomposition, spatial: SingularValueDecomposition, input: SingularValueDecomposition
            do {
                svd = try Factorisation.decompose(full)
                spatial = try Factorisation.decomposeSpatially(full)
                input = try Factorisation.decomposeInputChannels(full)
            } catch { throw CompressionError("cannot profile: \(error.reason)") }
            // Each family: its largest rank, its break-even, and the pair at a rank.
            let families: [(name: String, maxRank: Int, breakEven: Double, saves: (Int) -> Bool, pair: (Int) -> any ConvolutionLayer)] = [
                ("svd", svd.k, Factorisation.breakEvenRank(rows: rows, columns: full.outChannels),
                 { Factorisation.savesParameters(rank: $0, rows: rows, columns: full.outChannels) },
                 { Factorisation.factorise(full, rank: $0, svd: svd, workspace: model.workspace) }),
                ("spatial-svd", spatial.k, Factorisation.spatialSVDBreakEvenRank(full),
                 { Factorisation.spatialSVDSavesParameters(rank: $0, full) },
                 { Factorisation.spatialSVD(full, rank: $0, svd: spatial, workspace: model.workspace) }),
                ("tucker2", min(input.k, svd.k),
                 Factorisation.tucker2BreakEvenRank(kernelArea: area, inChannels: full.inChannels, outChannels: full.outChannels),
                 { Factorisation.tucker2Weights(kernelArea: area, inChannels: full.inChannels, outChannels: full.outChannels,
                                                inputRank: $0, outputRank: $0) < fullWeights },
                 { Factorisation.tucker2(full, inputRank: $0, outputRank: $0, inputSVD: input, outputSVD: svd, workspace: model.workspace).layer }),
            ]
            var fullRounds: [Double] = []
            var pairs: [String: [LatencyProfile.Point]] = [:]
            for family in families {
                let wanted = (ranks ?? ladder(breakEven: family.breakEven)).filter { $0 >= 1 && $0 <= family.maxRank && family.saves($0) }
                var points: [LatencyProfile.Point] = []
                for rank in Set(wanted).sorted() {
                    let pair = family.pair(rank)
                    var pairRounds: [Double] = []
                    for round in 0..<rounds {
                        let m = timing.measure(full: full, pair: pair, norm: slot.norm, size: slot.size, seed: UInt64(round))
                        fullRounds.append(m.fullMs); pairRounds.append(m.factorisedMs)
                    }
                    points.append(.init(rank: rank, ms: Engine.median(pairRounds), spreadMs: [pairRounds.min()!, pairRounds.max()!]))
                }
                if !points.isEmpty { pairs[family.name] = points }
            }
            if fullRounds.isEmpty {
                for round in 0..<rounds { fullRounds.append(timing.measure(full: full, pair: full, norm: slot.norm, size: slot.size, seed: UInt64(round)).fullMs) }
            }
            layers.append(.init(name: full.name, kernelShape: [full.kernelHeight, full.kernelWidth, full.inChannels, full.outChannels],
                                inputSize: slot.size, fullMs: Engine.median(fullRounds),
                                fullSpreadMs: [fullRounds.min()!, fullRounds.max()!], pairs: pairs))
            progress(index + 1, slots.count, full.name)
        }
        let stamp = ISO8601DateFormatter().string(from: Date())
        return LatencyProfile(host: host, cpu: cpu, blasCore: BLAS.coreName, threads: BLAS.threads, batch: timing.batch,
                              runs: timing.runs, imageSize: imageSize, createdAt: stamp, layers: layers)
    }
}

extension CompressionMethod {
    /// The kind of factorised layer the method makes: the key of its times in a `LatencyProfile`.
    /// A plan's pairs are looked up per layer, by each layer's own method: its family here is "mixed".
    public var pairFamily: String {
        switch self {
        case .svd, .arsvd: "svd"
        case .tucker2: "tucker2"
        case .spatialSVD: "spatial-svd"
        case .allocated: "mixed"
        }
    }
}

/// Which profile gated a compression: recorded in its summary, shown by the report.
public struct LatencyProfileRef: Codable, Sendable, Equatable {
    public var host: String
    public var cpu: String
    public var createdAt: String

    public init(_ profile: LatencyProfile) {
        host = profile.host; cpu = profile.cpu; createdAt = profile.createdAt
    }
}

extension LatencyProfile {
    /// A Markdown table: for each layer, its full time and the ranks of each family timed faster.
    public var fasterPairsTable: [String] {
        let families = ["svd", "tucker2", "spatial-svd"]
        var lines = ["| layer | input | full ms/img | " + families.map { "\($0): ranks faster than full" }.joined(separator: " | ") + " |",
                     "|---|---|---|" + families.map { _ in "---|" }.joined()]
        for layer in layers {
            let cells = families.map { family -> String in
                let faster = (layer.pairs[family] ?? []).filter { $0.ms < layer.fullMs }.map { String($0.rank) }
                return faster.isEmpty ? "none" : "r=" + faster.joined(separator: ",")
            }
            lines.append(String(format: "| %@ | %d | %.3f | ", layer.name, layer.inputSize, layer.fullMs) + cells.joined(separator: " | ") + " |")
        }
        return lines
    }
}
