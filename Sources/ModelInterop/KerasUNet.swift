import Engine
import Foundation

/// Maps a Keras model onto ranksweep's U-Net (`UNet`, the reference architecture of the README).
///
/// - Structure: with a model config (`.keras`, legacy `.h5`), the layers are walked in model order
///   against the reference sequence (Input; per encoder level Conv 3x3, BN, ReLU, Conv 3x3, BN, ReLU,
///   MaxPool 2x2; the bottleneck block; per decoder level Conv2DTranspose 2x2/2, Concatenate
///   [upsampled, skip], block; head Conv 1x1 sigmoid), checking each layer's settings. The first
///   layer that differs is the error. A `.weights.h5` has no config: only its weights' classes,
///   counts and shapes are checked (a Dropout, which has no weights, cannot be seen there).
/// - Weights: by the reference names (`enc0_conv1`, `enc0_bn1`, `up0`, `dec0_conv1`, `head`, …;
///   levels numbered from 0 or from 1) when every layer has one; otherwise by order within each class
///   (Conv2D, BatchNormalization, Conv2DTranspose), which for this architecture is the forward order.
/// - Inferred: depth = number of Conv2DTranspose layers, input channels and base filters = the
///   first convolution's kernel `(3, 3, cin, base)`.
/// - Conv2DTranspose kernels: Keras stores `(kh, kw, cout, cin)`, which is also ranksweep's layout
///   (`ConvTranspose2D`), so they are taken as they are, after checking both channel counts.
enum KerasUNet {
    static let epsilon: Double = 1e-3

    static func model(from file: KerasFile) throws -> (model: UNet, metadata: [String: String]) {
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: file.path, reason: reason) }
        let convs = file.layers.filter { $0.className == "Conv2D" }
        let bns = file.layers.filter { $0.className == "BatchNormalization" }
        let ups = file.layers.filter { $0.className == "Conv2DTranspose" }
        if !file.hasConfig, let other = file.layers.first(where: { KerasFile.variableNames[$0.className] == nil }) {
            throw fail("layer '\(other.name)' does not fit ranksweep's U-Net: it has only Conv2D, BatchNormalization and Conv2DTranspose layers with weights")
        }
        let depth = ups.count
        guard depth >= 1 else { throw fail("no Conv2DTranspose layer: not a U-Net ranksweep can load (it needs one per decoder level)") }
        let momentum = (bns.first?.config["momentum"] as? NSNumber)?.floatValue
        /// The architecture read off the first convolution's kernel `(3, 3, cin, base)`.
        func architecture(from first: KerasLayer?) throws -> UNetConfig {
            guard let first, let kernel = first.weights["kernel"], kernel.rank == 4 else {
                throw fail("no Conv2D layer with a 4-D kernel: not a U-Net")
            }
            var config = UNetConfig(inputChannels: kernel.shape[2], baseFilters: kernel.shape[3], depth: depth)
            if let momentum { config.bnMomentum = momentum }
            if let problem = config.problem {
                throw fail("layer '\(first.name)' does not fit ranksweep's U-Net: \(problem) (from its kernel \(kernel.shape))")
            }
            return config
        }
        // With a config, the layer sequence is checked first: it names the first misfit best.
        if file.hasConfig { try checkStructure(file, config: architecture(from: convs.first)) }

        // ranksweep's layer names in forward order, per class.
        let blockNames = (0..<depth).map { "enc\($0)" } + ["bottleneck"] + (0..<depth).reversed().map { "dec\($0)" }
        let convSlots = blockNames.flatMap { ["\($0)_conv1", "\($0)_conv2"] } + ["head"]
        let bnSlots = blockNames.flatMap { ["\($0)_bn1", "\($0)_bn2"] }
        let upSlots = (0..<depth).reversed().map { "up\($0)" }

        var assignment: [String: KerasLayer] = [:]   // ranksweep layer name -> Keras layer
        if let byName = referenceNameAssignment(convs + bns + ups, expected: Set(convSlots + bnSlots + upSlots)) {
            assignment = byName
        } else {
            for (className, layers, slots) in [("Conv2D", convs, convSlots), ("BatchNormalization", bns, bnSlots), ("Conv2DTranspose", ups, upSlots)] {
                if layers.count > slots.count {
                    throw fail("layer '\(layers[slots.count].name)' (\(className)) does not fit ranksweep's U-Net: a depth-\(depth) U-Net (\(depth) Conv2DTranspose layers) has \(slots.count) \(className) layers, this model \(layers.count)")
                }
                if layers.count < slots.count {
                    throw fail("the model has \(layers.count) \(className) layers; a depth-\(depth) U-Net (\(depth) Conv2DTranspose layers) has \(slots.count) (the last one, \(slots.last!), is missing)")
                }
                for (slot, layer) in zip(slots, layers) { assignment[slot] = layer }
            }
        }
        let config = try architecture(from: assignment["enc0_conv1"])

        // Shapes, slot by slot in forward order, against a model of the inferred architecture.
        let model = UNet(config: config, seed: 0)
        var tensors: [String: Tensor] = [:]
        for parameter in model.parameters {
            let dot = parameter.name.firstIndex(of: ".")!
            let slot = String(parameter.name[..<dot]), variable = String(parameter.name[parameter.name.index(after: dot)...])
            let layer = assignment[slot]!
            let what = "layer '\(layer.name)' (\(layer.className), taken as \(slot))"
            guard let value = layer.weights[variable] else {
                throw fail("\(what) does not fit ranksweep's U-Net: it has no \(variable) (it has \(layer.weights.keys.sorted().joined(separator: ", ")))")
            }
            let expected = parameter.value.shape
            if value.shape != expected {
                var why = "its \(variable) is \(value.shape), ranksweep's U-Net needs \(expected)"
                if variable == "kernel", value.rank == 4, value.shape[0...1] != expected[0...1] {
                    why = "a \(value.shape[0])x\(value.shape[1]) kernel where ranksweep's U-Net has \(expected[0])x\(expected[1]) (kernel \(value.shape), needs \(expected))"
                }
                throw fail("\(what) does not fit ranksweep's U-Net: \(why)")
            }
            tensors[parameter.name] = value
        }
        try model.assign(tensors, path: file.path)

        var metadata: [String: String] = [
            ModelFile.sourceKey: "keras \(file.kind.rawValue) \(URL(fileURLWithPath: file.path).lastPathComponent)",
        ]
        if let version = file.kerasVersion { metadata["keras.version"] = version }
        if let shape = file.inputShape, shape.count == 4, let h = shape[1], let w = shape[2], h == w { metadata[ModelFile.imageSizeKey] = String(h) }
        return (model, metadata)
    }

    /// Slot assignment by the reference layer names, or nil when the names are not all reference names.
    private static func referenceNameAssignment(_ layers: [KerasLayer], expected: Set<String>) -> [String: KerasLayer]? {
        let pattern = try! NSRegularExpression(pattern: #"^(enc|dec|up)(\d+)(_(conv|bn)[12])?$|^bottleneck_(conv|bn)[12]$|^head$"#)
        var levels: [Int] = []
        for layer in layers {
            let range = NSRange(layer.name.startIndex..., in: layer.name)
            guard let m = pattern.firstMatch(in: layer.name, range: range) else { return nil }
            if let r = Range(m.range(at: 2), in: layer.name) { levels.append(Int(layer.name[r])!) }
        }
        // Levels may be numbered from 1 (enc1 … encD), as some scripts do; ranksweep numbers from 0.
        let offset = levels.min() ?? 0
        guard offset == 0 || offset == 1 else { return nil }
        var result: [String: KerasLayer] = [:]
        for layer in layers {
            var name = layer.name
            if offset == 1, let m = pattern.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)),
               let r = Range(m.range(at: 2), in: name) {
                name.replaceSubrange(r, with: String(Int(name[r])! - 1))
            }
            guard result[name] == nil else { return nil }
            result[name] = layer
        }
        return Set(result.keys) == expected ? result : nil
    }

    // MARK: structure

    private enum Step {
        case input
        case conv(slot: String, kernel: Int, filters: Int)
        case batchNorm(slot: String)
        case relu
        case pool
        case up(slot: String, filters: Int)
        case concat(up: String)
        case head

        var expectation: String {
            switch self {
            case .input: "InputLayer"
            case let .conv(slot, kernel, filters): "Conv2D \(kernel)x\(kernel), \(filters) filters (\(slot))"
            case let .batchNorm(slot): "BatchNormalization (\(slot))"
            case .relu: "ReLU"
            case .pool: "MaxPooling2D 2x2"
            case let .up(slot, filters): "Conv2DTranspose 2x2 stride 2, \(filters) filters (\(slot))"
            case let .concat(up): "Concatenate [\(up), skip]"
            case .head: "Conv2D 1x1, 1 filter, sigmoid (head)"
            }
        }
    }

    private static func steps(_ c: UNetConfig) -> [Step] {
        func block(_ prefix: String, _ filters: Int) -> [Step] {
            [.conv(slot: "\(prefix)_conv1", kernel: 3, filters: filters), .batchNorm(slot: "\(prefix)_bn1"), .relu,
             .conv(slot: "\(prefix)_conv2", kernel: 3, filters: filters), .batchNorm(slot: "\(prefix)_bn2"), .relu]
        }
        var steps: [Step] = [.input]
        for level in 0..<c.depth { steps += block("enc\(level)", c.filters(level: level)) + [.pool] }
        steps += block("bottleneck", c.bottleneckFilters)
        for level in (0..<c.depth).reversed() {
            steps += [.up(slot: "up\(level)", filters: c.filters(level: level)), .concat(up: "up\(level)")] + block("dec\(level)", c.filters(level: level))
        }
        return steps + [.head]
    }

    /// Walks the config's layers against the reference sequence; throws at the first that differs.
    private static func checkStructure(_ file: KerasFile, config: UNetConfig) throws {
        let layers = file.layers
        var j = 0
        var lastUp = ""
        for step in steps(config) {
            if case .input = step {
                if j < layers.count, layers[j].className == "InputLayer" { j += 1 }
                continue
            }
            guard j < layers.count else {
                throw ModelFileError(path: file.path, reason: "the model ends after layer '\(layers.last?.name ?? "?")'; ranksweep's depth-\(config.depth) U-Net continues with \(step.expectation)")
            }
            let layer = layers[j]
            func misfit(_ why: String) -> ModelFileError {
                ModelFileError(path: file.path, reason: "layer '\(layer.name)' (\(layer.className), layer \(j + 1) of \(layers.count)) does not fit ranksweep's U-Net: \(why)")
            }
            let expected = "expected \(step.expectation) here"
            switch layer.className {
            case "Dropout", "SpatialDropout2D", "GaussianDropout", "AlphaDropout":
                throw misfit("ranksweep's U-Net has no dropout (\(expected))")
            default: break
            }
            let c = layer.config
            switch step {
            case .input: break
            case let .conv(_, kernel, filters):
                guard layer.className == "Conv2D" else { throw misfit(expected) }
                try checkConv(layer, misfit, kernel: kernel, filters: filters, activation: "linear")
            case .head:
                guard layer.className == "Conv2D" else { throw misfit(expected) }
                let activation = c["activation"] as? String ?? "linear"
                try checkConv(layer, misfit, kernel: 1, filters: 1, activation: activation == "linear" ? "linear" : "sigmoid")
                if activation == "linear" {
                    // A separate sigmoid Activation after a linear head is the same model.
                    j += 1
                    guard j < layers.count, layers[j].className == "Activation", layers[j].config["activation"] as? String == "sigmoid" else {
                        throw misfit("the head has no sigmoid (expected activation 'sigmoid' or an Activation('sigmoid') after it)")
                    }
                }
            case .batchNorm:
                guard layer.className == "BatchNormalization" else { throw misfit(expected) }
                let axis = ints(c["axis"]) ?? [-1]
                guard axis == [-1] || axis == [3] else { throw misfit("it normalises axis \(axis); ranksweep's BatchNorm normalises channels (axis -1)") }
                if let e = (c["epsilon"] as? NSNumber)?.doubleValue, abs(e - epsilon) > 1e-12 {
                    throw misfit("epsilon \(e); ranksweep's BatchNorm uses \(epsilon) (the Keras default)")
                }
                if c["center"] as? Bool == false || c["scale"] as? Bool == false {
                    throw misfit("it has center or scale switched off; ranksweep's BatchNorm has both gamma and beta")
                }
            case .relu:
                if layer.className == "Activation", c["activation"] as? String == "relu" { break }
                guard layer.className == "ReLU" else { throw misfit(expected) }
                if let m = c["max_value"] as? NSNumber { throw misfit("a ReLU capped at \(m); ranksweep's is uncapped") }
                if let s = (c["negative_slope"] as? NSNumber)?.doubleValue, s != 0 { throw misfit("a leaky ReLU (slope \(s))") }
                if let t = (c["threshold"] as? NSNumber)?.doubleValue, t != 0 { throw misfit("a ReLU with threshold \(t)") }
            case .pool:
                guard layer.className == "MaxPooling2D" else { throw misfit(expected) }
                let pool = pair(c["pool_size"]) ?? [2, 2]
                let strides = pair(c["strides"]) ?? pool
                guard pool == [2, 2], strides == [2, 2] else { throw misfit("pool \(pool) stride \(strides); ranksweep's U-Net pools 2x2 with stride 2") }
            case let .up(slot, filters):
                guard layer.className == "Conv2DTranspose" else { throw misfit(expected) }
                let kernel = pair(c["kernel_size"]) ?? [2, 2], strides = pair(c["strides"]) ?? [1, 1]
                guard kernel == [2, 2], strides == [2, 2] else {
                    throw misfit("kernel \(kernel) stride \(strides); ranksweep's U-Net upsamples with a 2x2 kernel, stride 2")
                }
                if let f = (c["filters"] as? NSNumber)?.intValue, f != filters { throw misfit("\(f) filters; \(slot) has \(filters)") }
                if let a = c["activation"] as? String, a != "linear" { throw misfit("activation '\(a)'; ranksweep's transposed convolutions are linear") }
                if c["use_bias"] as? Bool == false { throw misfit("no bias; ranksweep's transposed convolutions have one") }
                lastUp = layer.name
            case .concat:
                guard layer.className == "Concatenate" else { throw misfit(expected) }
                let axis = (c["axis"] as? NSNumber)?.intValue ?? -1
                guard axis == -1 || axis == 3 else { throw misfit("it concatenates on axis \(axis), not channels") }
                if layer.inputs.count >= 1, layer.inputs[0] != lastUp {
                    throw misfit("it concatenates [\(layer.inputs.joined(separator: ", "))]; ranksweep's U-Net concatenates [upsampled (\(lastUp)), skip] in that order")
                }
            }
            j += 1
        }
        if j < layers.count {
            throw ModelFileError(path: file.path, reason: "layer '\(layers[j].name)' (\(layers[j].className), layer \(j + 1) of \(layers.count)) does not fit ranksweep's U-Net: it ends at the head, the sigmoid 1x1 convolution")
        }
    }

    private static func checkConv(_ layer: KerasLayer, _ misfit: (String) -> ModelFileError, kernel: Int, filters: Int, activation: String) throws {
        let c = layer.config
        let size = pair(c["kernel_size"]) ?? [kernel, kernel]
        guard size == [kernel, kernel] else {
            throw misfit("a \(size.map(String.init).joined(separator: "x")) kernel where ranksweep's U-Net has \(kernel)x\(kernel)")
        }
        if let f = (c["filters"] as? NSNumber)?.intValue, f != filters { throw misfit("\(f) filters where ranksweep's U-Net has \(filters)") }
        let strides = pair(c["strides"]) ?? [1, 1], dilation = pair(c["dilation_rate"]) ?? [1, 1]
        guard strides == [1, 1], dilation == [1, 1] else { throw misfit("strides \(strides), dilation \(dilation); ranksweep's convolutions have 1 and 1") }
        // A 1x1 kernel pads nothing either way.
        if kernel > 1, let p = c["padding"] as? String, p != "same" { throw misfit("padding '\(p)'; ranksweep's convolutions pad 'same'") }
        if let g = (c["groups"] as? NSNumber)?.intValue, g != 1 { throw misfit("\(g) groups") }
        if c["use_bias"] as? Bool == false { throw misfit("no bias; ranksweep's convolutions have one") }
        if let a = c["activation"] as? String, a != activation {
            throw misfit("activation '\(a)' where ranksweep's U-Net has \(activation == "linear" ? "none (BatchNorm and ReLU follow)" : "'\(activation)'")")
        }
        if let format = c["data_format"] as? String, format != "channels_last" { throw misfit("data format \(format); ranksweep reads channels_last") }
    }

    /// A 2-D setting (`3` or `[3, 3]`) as two ints.
    private static func pair(_ value: Any?) -> [Int]? {
        guard let v = ints(value) else { return nil }
        return v.count == 1 ? [v[0], v[0]] : v
    }

    /// An int or a list of ints from a Keras config value (`3`, `[3, 3]`, `-1`, `[3]`).
    private static func ints(_ value: Any?) -> [Int]? {
        if let n = value as? NSNumber { return [n.intValue] }
        if let list = value as? [Any], list.count == 1, let n = list[0] as? NSNumber { return [n.intValue] }
        if let list = value as? [Any] { return list.compactMap { ($0 as? NSNumber)?.intValue } }
        return nil
    }
}
