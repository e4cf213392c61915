import Compression
import Foundation
import XCTest
@testable import Engine
@testable import ModelInterop

/// A protocol-buffers reader independent of the writer: every field of a message, in order.
struct ProtobufMessage {
    enum Value { case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt32) }
    var fields: [(number: Int, value: Value)] = []

    struct Malformed: Error {}

    init(_ bytes: ArraySlice<UInt8>) throws {
        var i = bytes.startIndex
        func varint() throws -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < bytes.endIndex, shift < 64 else { throw Malformed() }
                let b = bytes[i]; i += 1
                result |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return result }
                shift += 7
            }
        }
        while i < bytes.endIndex {
            let key = try varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: fields.append((number, .varint(try varint())))
            case 1:
                guard i + 8 <= bytes.endIndex else { throw Malformed() }
                fields.append((number, .fixed64(bytes[i..<(i + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) }))); i += 8
            case 2:
                let n = Int(try varint())
                guard n >= 0, i + n <= bytes.endIndex else { throw Malformed() }
                fields.append((number, .bytes(bytes[i..<(i + n)]))); i += n
            case 5:
                guard i + 4 <= bytes.endIndex else { throw Malformed() }
                fields.append((number, .fixed32(bytes[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }))); i += 4
            default: throw Malformed()
            }
        }
    }

    func messages(_ number: Int) throws -> [ProtobufMessage] {
        try fields.filter { $0.number == number }.compactMap { if case .bytes(let b) = $0.value { return try ProtobufMessage(b) } else { return nil } }
    }
    func message(_ number: Int) throws -> ProtobufMessage? { try messages(number).first }
    func strings(_ number: Int) -> [String] {
        fields.filter { $0.number == number }.compactMap { if case .bytes(let b) = $0.value { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }
    func string(_ number: Int) -> String? { strings(number).first }
    func rawBytes(_ number: Int) -> ArraySlice<UInt8>? {
        fields.first { $0.number == number }.flatMap { if case .bytes(let b) = $0.value { return b } else { return nil } }
    }
    /// Repeated int64s, packed or not.
    func ints(_ number: Int) throws -> [Int] {
        var result: [Int] = []
        for f in fields where f.number == number {
            switch f.value {
            case .varint(let v): result.append(Int(Int64(bitPattern: v)))
            case .bytes(let b):
                // A packed run: varints back to back.
                var i = b.startIndex
                while i < b.endIndex {
                    var v: UInt64 = 0, shift: UInt64 = 0
                    while true {
                        guard i < b.endIndex, shift < 64 else { throw Malformed() }
                        let byte = b[i]; i += 1
                        v |= UInt64(byte & 0x7F) << shift
                        if byte < 0x80 { break }
                        shift += 7
                    }
                    result.append(Int(Int64(bitPattern: v)))
                }
            default: throw Malformed()
            }
        }
        return result
    }
    func int(_ number: Int) throws -> Int? { try ints(number).first }
}

/// The parts of an ONNX file the tests check.
struct ONNXSummary {
    struct Node { var op: String; var name: String; var inputs: [String]; var outputs: [String] }
    struct Initializer { var name: String; var dims: [Int]; var dataType: Int; var values: [Float] }
    struct IO { var name: String; var elementType: Int; var dims: [String] }
    var irVersion: Int
    var opset: Int
    var nodes: [Node]
    var initializers: [Initializer]
    var inputs: [IO]
    var outputs: [IO]
    var metadata: [String: String]

    init(path: String) throws {
        let model = try ProtobufMessage(ArraySlice(try Data(contentsOf: URL(fileURLWithPath: path))))
        irVersion = try model.int(1) ?? -1
        opset = try model.message(8)?.int(2) ?? -1
        metadata = Dictionary(uniqueKeysWithValues: try model.messages(14).map { ($0.string(1) ?? "", $0.string(2) ?? "") })
        let graph = try XCTUnwrap(try model.message(7))
        nodes = try graph.messages(1).map { Node(op: $0.string(4) ?? "", name: $0.string(3) ?? "", inputs: $0.strings(1), outputs: $0.strings(2)) }
        initializers = try graph.messages(5).map { t in
            let raw = t.rawBytes(9) ?? []
            let values = stride(from: raw.startIndex, to: raw.endIndex, by: 4).map { i in
                Float(bitPattern: raw[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            }
            return Initializer(name: t.string(8) ?? "", dims: try t.ints(1), dataType: try t.int(2) ?? -1, values: values)
        }
        func io(_ v: ProtobufMessage) throws -> IO {
            let tensor = try XCTUnwrap(try v.message(2)?.message(1))
            let dims = try (tensor.message(2)?.messages(1) ?? []).map { d in try d.int(1).map(String.init) ?? d.string(2) ?? "?" }
            return IO(name: v.string(1) ?? "", elementType: try tensor.int(1) ?? -1, dims: dims)
        }
        inputs = try graph.messages(11).map(io)
        outputs = try graph.messages(12).map(io)
    }
}

final class ONNXExportTests: XCTestCase {
    func smallModel(seed: UInt64 = 3) -> UNet {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: seed)
        // Non-trivial BatchNorm statistics, so a swapped initializer would show.
        var rng = SeededGenerator(seed: seed + 1)
        for bn in model.batchNorms {
            for p in bn.parameters { for i in 0..<p.value.count { p.value.storage[i] = rng.uniform(0.5, 1.5) } }
        }
        return model
    }

    /// Reads the exported file back: opset, inputs, outputs, node count and order, initializer names,
    /// shapes (kernels transposed to ONNX's layouts) and values.
    func testBaselineExportReadsBack() throws {
        let dir = try temporaryDirectory("onnx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = smallModel()
        let path = dir + "/model.onnx"
        let written = try ONNXExport.write(model, metadata: ["ranksweep.note": "test"], to: path)
        let onnx = try ONNXSummary(path: path)
        XCTAssertEqual(onnx.irVersion, 8)
        XCTAssertEqual(onnx.opset, 17)
        XCTAssertEqual(onnx.metadata["ranksweep.note"], "test")
        XCTAssertEqual(onnx.inputs.map(\.name), ["image"])
        XCTAssertEqual(onnx.inputs.first?.dims, ["batch", "height", "width", "3"])
        XCTAssertEqual(onnx.outputs.map(\.name), ["probabilities"])
        XCTAssertEqual(onnx.outputs.first?.dims, ["batch", "height", "width", "1"])
        XCTAssertEqual(onnx.inputs.first?.elementType, 1)
        // Per level: encoder block (6) + pool; bottleneck (6); per level: up, concat, block (6);
        // head, sigmoid and the two transposes.
        let depth = model.config.depth
        XCTAssertEqual(onnx.nodes.count, 15 * depth + 10)
        XCTAssertEqual(written.nodes, onnx.nodes.count)
        XCTAssertEqual(onnx.nodes.first?.op, "Transpose")
        XCTAssertEqual(onnx.nodes.last?.outputs, ["probabilities"])
        func count(_ op: String) -> Int { onnx.nodes.filter { $0.op == op }.count }
        XCTAssertEqual(count("Conv"), 4 * depth + 3)
        XCTAssertEqual(count("BatchNormalization"), 4 * depth + 2)
        XCTAssertEqual(count("ConvTranspose"), depth)
        XCTAssertEqual(count("Concat"), depth)
        // Topological order: every node input exists before the node.
        var known = Set(onnx.initializers.map(\.name) + ["image"])
        for node in onnx.nodes {
            for input in node.inputs { XCTAssertTrue(known.contains(input), "\(node.name) reads \(input) before it exists") }
            known.formUnion(node.outputs)
        }
        // Every weight under its ranksweep name, in ONNX's layout.
        let parameters = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.value) })
        XCTAssertEqual(Set(onnx.initializers.map(\.name)), Set(parameters.keys))
        for t in onnx.initializers {
            let p = try XCTUnwrap(parameters[t.name])
            XCTAssertEqual(t.dataType, 1)
            XCTAssertEqual(t.values.count, p.count, t.name)
            XCTAssertEqual(t.dims.reduce(1, *), p.count, t.name)
            if t.name.hasPrefix("up") && t.name.hasSuffix(".kernel") {
                XCTAssertEqual(t.dims, [p.shape[3], p.shape[2], 2, 2], t.name)     // (cin, cout, kh, kw)
                // ONNX (ci, co, h, w) = ranksweep (h, w, co, ci)
                let (cin, cout) = (p.shape[3], p.shape[2])
                XCTAssertEqual(t.values[((1 * cout + 2) * 2 + 1) * 2 + 0], p.storage[((1 * 2 + 0) * cout + 2) * cin + 1], t.name)
            } else if t.name.hasSuffix(".kernel") {
                XCTAssertEqual(t.dims, [p.shape[3], p.shape[2], p.shape[0], p.shape[1]], t.name)  // OIHW
                if p.shape[0] == 3 {
                    let (cin, cout) = (p.shape[2], p.shape[3])
                    // ONNX (o=1, i=2, h=0, w=2) = ranksweep (h=0, w=2, i=2, o=1)
                    XCTAssertEqual(t.values[((1 * cin + 2) * 3 + 0) * 3 + 2], p.storage[((0 * 3 + 2) * cin + 2) * cout + 1], t.name)
                }
            } else {
                XCTAssertEqual(t.dims, p.shape, t.name)
                XCTAssertEqual(t.values, p.storage, t.name)
            }
        }
        XCTAssertEqual(onnx.initializers.reduce(0) { $0 + $1.values.count }, model.parameterCount)
    }

    /// A compressed model: each factorised layer is two Conv nodes, and the initializers hold exactly
    /// the parameters Compression's accounting reports, in total and per layer.
    func testCompressedExportMatchesCompressionAccounting() throws {
        let dir = try temporaryDirectory("onnx-compressed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, summary) = try ModelCompressor.compress(model: smallModel(), method: .svd(rank: 2), imageSize: 16)
        XCTAssertGreaterThan(summary.factorisedLayerCount, 0)
        try ONNXExport.write(model, to: dir + "/compressed.onnx")
        let onnx = try ONNXSummary(path: dir + "/compressed.onnx")
        XCTAssertEqual(onnx.nodes.count, 15 * model.config.depth + 10 + summary.factorisedLayerCount)
        let total = onnx.initializers.reduce(0) { $0 + $1.values.count }
        print("compressed export: initializers hold \(total) parameters; the compression summary says \(summary.parametersAfter) (before: \(summary.parametersBefore))")
        XCTAssertEqual(total, summary.parametersAfter)
        for layer in summary.layers {
            let held = onnx.initializers.filter { $0.name.hasPrefix(layer.name + ".") }.reduce(0) { $0 + $1.values.count }
            XCTAssertEqual(held, layer.parametersAfter, layer.name)
            let convs = onnx.nodes.filter { $0.op == "Conv" && ($0.name == layer.name || $0.name.hasPrefix(layer.name + ".")) }
            XCTAssertEqual(convs.map(\.name), layer.factorised ? [layer.name + ".a", layer.name + ".b"] : [layer.name])
            if layer.factorised {
                XCTAssertEqual(convs[1].inputs.first, layer.name + ".a", "the 1x1 convolution reads the first one")
                let a = try XCTUnwrap(onnx.initializers.first { $0.name == layer.name + ".a.kernel" })
                XCTAssertEqual(a.dims[0], layer.rank, "the first kernel's output channels are the rank")
            }
        }
    }

    /// A failed write leaves nothing behind and names the file.
    func testUnwritablePathIsAnError() throws {
        let dir = try temporaryDirectory("onnx-unwritable")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("a file, not a folder".utf8).write(to: URL(fileURLWithPath: dir + "/file"))
        let path = dir + "/file/model.onnx"
        XCTAssertThrowsError(try ONNXExport.write(smallModel(), to: path)) { error in
            XCTAssertTrue("\(error)".contains(dir + "/file"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["file"], "nothing half written")
    }
}
