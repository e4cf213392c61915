import Foundation

/// Saving and loading a U-Net as safetensors. Tensor names follow the Keras reference
/// (`enc0_conv1.kernel`, `enc0_bn1.moving_mean`, `up1.kernel`, …); a factorised convolution is
/// saved as `NAME.a.kernel`, `NAME.b.kernel`, `NAME.b.bias`; a Tucker-2 one as `NAME.t1.kernel`,
/// `NAME.core.kernel`, `NAME.t2.kernel`, `NAME.t2.bias`; a spatial-SVD one as `NAME.v.kernel`,
/// `NAME.h.kernel`, `NAME.h.bias`. The metadata holds the architecture
/// (`ranksweep.architecture`, JSON of `UNetConfig`) plus any caller-supplied entries, so a file is
/// self-describing and loads into the right shape without flags.
extension UNet {
    public static let architectureKey = "ranksweep.architecture"
    public static let formatKey = "ranksweep.format"

    /// Every tensor by its saved name.
    public var stateDictionary: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.value) })
    }

    public func save(to path: String, metadata extra: [String: String] = [:]) throws {
        // Sorted keys: identical models give byte-identical files (resumed and undisturbed runs compare by hash).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let config = try encoder.encode(self.config)
        var metadata = extra
        metadata[UNet.architectureKey] = String(decoding: config, as: UTF8.self)
        metadata[UNet.formatKey] = "ranksweep-unet-1"
        try SafeTensors.write(stateDictionary, metadata: metadata, to: path)
    }

    /// Loads a model written by `save`: builds the architecture from the metadata, swaps in
    /// factorised convolutions where the file has them, and checks every tensor's presence and
    /// shape. Returns the model and the file's metadata.
    public static func load(path: String) throws -> (model: UNet, metadata: [String: String]) {
        let (tensors, metadata) = try SafeTensors.read(path: path)
        guard let json = metadata[architectureKey] else {
            throw ModelFileError(path: path, reason: "not a ranksweep U-Net (no \(architectureKey) in its metadata)")
        }
        guard let config = try? JSONDecoder().decode(UNetConfig.self, from: Data(json.utf8)) else {
            throw ModelFileError(path: path, reason: "unreadable architecture in metadata: \(json)")
        }
        if let problem = config.problem { throw ModelFileError(path: path, reason: "bad architecture: \(problem)") }
        let model = UNet(config: config, seed: 0)
        try model.assign(tensors, path: path)
        return (model, metadata)
    }

    /// Sets every weight from `tensors` (names as saved), factorising slots where the tensors say so.
    /// Throws naming the first missing, unexpected or wrongly shaped tensor.
    public func assign(_ tensors: [String: Tensor], path: String) throws {
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }
        for conv in convolutions {
            let name = conv.name
            if let a = tensors["\(name).a.kernel"], let b = tensors["\(name).b.kernel"] {
                guard a.rank == 4, b.rank == 4, a.shape[0] == conv.kernelHeight, a.shape[1] == conv.kernelWidth,
                      a.shape[2] == conv.inChannels, b.shape == [1, 1, a.shape[3], conv.outChannels], a.shape[3] >= 1 else {
                    throw fail("factorised layer \(name) has kernels \(a.shape) and \(b.shape), which do not fit \(conv.kernelHeight)x\(conv.kernelWidth) \(conv.inChannels)->\(conv.outChannels)")
                }
                replaceConvolution(named: name, with: LowRankConv2D(
                    name: name, firstKernel: a, secondKernel: b, bias: tensors["\(name).b.bias"], workspace: workspace))
            } else if let t1 = tensors["\(name).t1.kernel"], let core = tensors["\(name).core.kernel"],
                      let t2 = tensors["\(name).t2.kernel"] {
                guard t1.rank == 4, core.rank == 4, t2.rank == 4, t1.shape[0] == 1, t1.shape[1] == 1, t1.shape[2] == conv.inChannels,
                      t1.shape[3] >= 1, core.shape == [conv.kernelHeight, conv.kernelWidth, t1.shape[3], core.shape[3]], core.shape[3] >= 1,
                      t2.shape == [1, 1, core.shape[3], conv.outChannels] else {
                    throw fail("Tucker-2 layer \(name) has kernels \(t1.shape), \(core.shape) and \(t2.shape), which do not fit \(conv.kernelHeight)x\(conv.kernelWidth) \(conv.inChannels)->\(conv.outChannels)")
                }
                replaceConvolution(named: name, with: Tucker2Conv2D(
                    name: name, firstKernel: t1, coreKernel: core, lastKernel: t2, bias: tensors["\(name).t2.bias"], workspace: workspace))
            } else if let v = tensors["\(name).v.kernel"], let h = tensors["\(name).h.kernel"] {
                guard v.rank == 4, h.rank == 4, v.shape[0] == conv.kernelHeight, v.shape[1] == 1, v.shape[2] == conv.inChannels,
                      v.shape[3] >= 1, h.shape == [1, conv.kernelWidth, v.shape[3], conv.outChannels] else {
                    throw fail("spatial-SVD layer \(name) has kernels \(v.shape) and \(h.shape), which do not fit \(conv.kernelHeight)x\(conv.kernelWidth) \(conv.inChannels)->\(conv.outChannels)")
                }
                replaceConvolution(named: name, with: SpatialSVDConv2D(
                    name: name, verticalKernel: v, horizontalKernel: h, bias: tensors["\(name).h.bias"], workspace: workspace))
            }
        }
        let expected = parameters
        let expectedNames = Set(expected.map(\.name))
        for p in expected {
            guard let t = tensors[p.name] else { throw fail("missing tensor '\(p.name)'") }
            guard t.shape == p.value.shape else {
                throw fail("tensor '\(p.name)' has shape \(t.shape), the architecture needs \(p.value.shape)")
            }
            p.value = t
        }
        if let extra = tensors.keys.sorted().first(where: { !expectedNames.contains($0) }) {
            throw fail("unexpected tensor '\(extra)' for this architecture")
        }
    }
}
