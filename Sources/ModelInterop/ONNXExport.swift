import Basics
import Engine
import Foundation

/// Writes a U-Net (baseline or compressed) as an ONNX model, opset 17, protobuf written by hand.
///
/// Layout: the graph input `image` is **NHWC** `(batch, height, width, channels)`, as ranksweep and
/// Keras take it (height and width multiples of 2^depth); a `Transpose` (perm 0,3,1,2) turns it
/// into the NCHW ONNX convolutions need. The output `probabilities` is NHWC `(batch, height, width, 1)`,
/// after a `Transpose` back (perm 0,2,3,1). Batch, height and width are symbolic.
///
/// Nodes, in forward order, each named after the ranksweep layer and writing a tensor of the same
/// name: `Conv` (kernel transposed from HWIO to OIHW), `BatchNormalization` (kept, with its moving
/// statistics, epsilon 1e-3), `Relu`, `MaxPool` 2x2, `ConvTranspose` 2x2 stride 2 (kernel from
/// `(kh, kw, cout, cin)` to ONNX's `(cin, cout, kh, kw)`), `Concat` [upsampled, skip] on channels,
/// the head `Conv` and `Sigmoid`. A factorised layer `NAME` becomes two `Conv` nodes `NAME.a`
/// (k x k, no bias) and `NAME.b` (1x1, bias). Every weight is an initializer under its ranksweep
/// name (`enc0_conv1.kernel`, `enc1_conv2.a.kernel`, `enc0_bn1.moving_mean`, …), so the initializer
/// element counts add up to `UNet.parameterCount`, the total the compression report quotes.
public enum ONNXExport {
    public static let opset = 17
    /// ONNX IR version 8 is the one that goes with opset 17.
    public static let irVersion = 8
    public static let inputName = "image"
    public static let outputName = "probabilities"

    /// ONNX `TensorProto.DataType` FLOAT.
    static let float32 = 1

    /// What was written: node count, initializer count and their total element count, file size.
    public struct Written: Sendable {
        public var nodes: Int
        public var initializers: Int
        public var initializerElements: Int
        public var bytes: Int
    }

    @discardableResult
    public static func write(_ model: UNet, metadata: [String: String] = [:], to path: String) throws -> Written {
        let (bytes, graph) = encode(model, metadata: metadata)
        try AtomicFile.write(Data(bytes), to: path)
        return Written(nodes: graph.nodes.count, initializers: graph.initializers.count,
                       initializerElements: graph.initializers.reduce(0) { $0 + $1.values.count }, bytes: bytes.count)
    }

    /// The bytes of the ONNX `ModelProto`.
    public static func encode(_ model: UNet, metadata: [String: String] = [:]) -> [UInt8] { encode(model, metadata: metadata).bytes }

    private static func encode(_ model: UNet, metadata: [String: String]) -> (bytes: [UInt8], graph: GraphBuilder) {
        var graph = GraphBuilder()
        graph.build(model)
        var out = ProtobufWriter()
        out.int(1, irVersion)                                   // ir_version
        out.string(2, "ranksweep")                              // producer_name
        out.message(8) { $0.string(1, ""); $0.int(2, opset) }   // opset_import: default domain
        out.string(6, "U-Net exported by ranksweep. Input 'image' NHWC (batch, height, width, \(model.config.inputChannels)), values as ranksweep was trained on them; output 'probabilities' NHWC (batch, height, width, 1). Height and width: multiples of \(1 << model.config.depth).")
        out.message(7) { graph.write(into: &$0, model: model) }  // graph
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            out.message(14) { $0.string(1, key); $0.string(2, value) }   // metadata_props
        }
        return (out.bytes, graph)
    }

    private struct Node {
        var op: String
        var name: String
        var inputs: [String]
        var attributes: [(String, Attribute)] = []
    }

    private enum Attribute {
        case int(Int), ints([Int]), float(Float)
    }

    private struct GraphBuilder {
        var nodes: [Node] = []
        var initializers: [(name: String, shape: [Int], values: [Float])] = []

        /// Appends a node whose output tensor is called after the node; returns that name.
        @discardableResult
        mutating func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [(String, Attribute)] = []) -> String {
            nodes.append(Node(op: op, name: name, inputs: inputs, attributes: attributes))
            return name
        }

        mutating func initializer(_ name: String, shape: [Int], values: [Float]) -> String {
            initializers.append((name, shape, values))
            return name
        }

        mutating func build(_ model: UNet) {
            var x = node("Transpose", "image_nchw", [ONNXExport.inputName], [("perm", .ints([0, 3, 1, 2]))])
            var skips: [String] = []
            for level in 0..<model.config.depth {
                x = block(model.encoders[level], "enc\(level)", x)
                skips.append(x)
                x = node("MaxPool", "pool\(level)", [x], [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
            }
            x = block(model.bottleneck, "bottleneck", x)
            for level in stride(from: model.config.depth - 1, through: 0, by: -1) {
                x = transposed(model.ups[level], x)
                x = node("Concat", "concat\(level)", [x, skips[level]], [("axis", .int(1))])
                x = block(model.decoders[level], "dec\(level)", x)
            }
            x = convolution(model.head, x)
            x = node("Sigmoid", "head_sigmoid", [x])
            node("Transpose", ONNXExport.outputName, [x], [("perm", .ints([0, 2, 3, 1]))])
        }

        mutating func block(_ block: ConvBlock, _ prefix: String, _ input: String) -> String {
            var x = convolution(block.conv1, input)
            x = batchNorm(block.bn1, x)
            x = node("Relu", "\(prefix)_relu1", [x])
            x = convolution(block.conv2, x)
            x = batchNorm(block.bn2, x)
            return node("Relu", "\(prefix)_relu2", [x])
        }

        mutating func batchNorm(_ bn: BatchNorm, _ input: String) -> String {
            let names = bn.parameters.map { initializer($0.name, shape: $0.value.shape, values: $0.value.storage) }
            return node("BatchNormalization", bn.name, [input] + names, [("epsilon", .float(bn.epsilon))])
        }

        mutating func convolution(_ layer: any ConvolutionLayer, _ input: String) -> String {
            if let pair = layer as? LowRankConv2D {
                return conv(pair.second, conv(pair.first, input))
            }
            if let tucker = layer as? Tucker2Conv2D {
                return conv(tucker.last, conv(tucker.core, conv(tucker.first, input)))
            }
            if let spatial = layer as? SpatialSVDConv2D {
                return conv(spatial.horizontal, conv(spatial.vertical, input))
            }
            guard let plain = layer as? Conv2D else {
                preconditionFailure("ONNX export: no ONNX form for convolution \(layer.name) (\(type(of: layer)))")
            }
            return conv(plain, input)
        }

        /// A `Conv` node; the kernel goes from HWIO `(kh, kw, cin, cout)` to OIHW.
        mutating func conv(_ layer: Conv2D, _ input: String) -> String {
            let (kh, kw, cin, cout) = (layer.kernelHeight, layer.kernelWidth, layer.inChannels, layer.outChannels)
            let k = layer.kernel.value.storage
            var oihw = [Float](repeating: 0, count: k.count)
            for h in 0..<kh { for w in 0..<kw { for i in 0..<cin { for o in 0..<cout {
                oihw[((o * cin + i) * kh + h) * kw + w] = k[((h * kw + w) * cin + i) * cout + o]
            } } } }
            var inputs = [input, initializer(layer.kernel.name, shape: [cout, cin, kh, kw], values: oihw)]
            if let bias = layer.bias { inputs.append(initializer(bias.name, shape: bias.value.shape, values: bias.value.storage)) }
            let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2)
            return node("Conv", layer.name, inputs, [("kernel_shape", .ints([kh, kw])), ("pads", .ints([ph, pw, ph, pw])),
                                                    ("strides", .ints([1, 1]))])
        }

        /// A `ConvTranspose` node; the kernel goes from `(kh, kw, cout, cin)` to `(cin, cout, kh, kw)`.
        mutating func transposed(_ layer: ConvTranspose2D, _ input: String) -> String {
            let (cin, cout) = (layer.inChannels, layer.outChannels)
            let k = layer.kernel.value.storage
            var converted = [Float](repeating: 0, count: k.count)
            for h in 0..<2 { for w in 0..<2 { for o in 0..<cout { for i in 0..<cin {
                converted[((i * cout + o) * 2 + h) * 2 + w] = k[((h * 2 + w) * cout + o) * cin + i]
            } } } }
            let kernel = initializer(layer.kernel.name, shape: [cin, cout, 2, 2], values: converted)
            let bias = initializer(layer.bias.name, shape: layer.bias.value.shape, values: layer.bias.value.storage)
            return node("ConvTranspose", layer.name, [input, kernel, bias], [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
        }

        func write(into g: inout ProtobufWriter, model: UNet) {
            for n in nodes {
                g.message(1) { p in                                     // node
                    for i in n.inputs { p.string(1, i) }
                    p.string(2, n.name)                                 // output: named after the node
                    p.string(3, n.name)
                    p.string(4, n.op)
                    for (name, value) in n.attributes {
                        p.message(5) { a in
                            a.string(1, name)
                            switch value {
                            case .int(let v): a.int(3, v); a.int(20, 2)          // i, type INT
                            case .ints(let v): a.packedInts(8, v); a.int(20, 7)  // ints, type INTS
                            case .float(let v): a.float(2, v); a.int(20, 1)      // f, type FLOAT
                            }
                        }
                    }
                }
            }
            g.string(2, "ranksweep_unet")
            for t in initializers {
                g.message(5) { p in                                     // initializer
                    p.packedInts(1, t.shape)                            // dims
                    p.int(2, ONNXExport.float32)                        // data_type
                    p.string(8, t.name)
                    t.values.withUnsafeBytes { p.bytes(9, $0) }         // raw_data, little-endian
                }
            }
            let c = model.config.inputChannels
            g.message(11) { valueInfo(&$0, ONNXExport.inputName, ["batch", "height", "width", c]) }
            g.message(12) { valueInfo(&$0, ONNXExport.outputName, ["batch", "height", "width", 1]) }
        }

        /// A float tensor's name, element type and shape; a String dimension is symbolic.
        func valueInfo(_ v: inout ProtobufWriter, _ name: String, _ dims: [Any]) {
            v.string(1, name)
            v.message(2) { type in
                type.message(1) { tensor in
                    tensor.int(1, ONNXExport.float32)
                    tensor.message(2) { shape in
                        for d in dims {
                            shape.message(1) { dim in
                                if let n = d as? Int { dim.int(1, n) } else { dim.string(2, "\(d)") }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension ONNXExport {
    /// For `make interop`: a seeded random batch `x` (2 images of `size`²) and the model's output `y`
    /// on it, as safetensors, for onnxruntime to reproduce. Returns `x`.
    @discardableResult
    public static func writeSample(_ model: UNet, size: Int, to path: String) throws -> Tensor {
        var rng = SeededGenerator(seed: 14)
        var x = Tensor.zeros([2, size, size, model.config.inputChannels])
        for i in 0..<x.count { x.storage[i] = rng.uniform(0, 1) }
        try SafeTensors.write(["x": x, "y": model.forward(x, training: false)], to: path)
        return x
    }
}

extension ONNXExport {
    /// A model file's ONNX bytes (the dashboard's ONNX links; the same export as `ranksweep export --onnx`).
    @Sendable public static func bytes(ofModelFile path: String) throws -> Data {
        let (net, metadata) = try ModelFile.load(path: path)
        return Data(encode(net, metadata: metadata))
    }
}
