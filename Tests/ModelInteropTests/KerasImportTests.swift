import Foundation
import XCTest
@testable import Engine
@testable import ModelInterop

/// The repository root (this file is Tests/ModelInteropTests/KerasImportTests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
/// Written by scripts/make-keras-fixtures.py with Keras 3.15.1 (see the README there).
let kerasFixtures = packageRoot + "/Tests/Fixtures/keras"

func maxAbsoluteDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "shapes \(a.shape) vs \(b.shape)")
    return zip(a.storage, b.storage).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

func temporaryDirectory(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ranksweep-\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

final class KerasImportTests: XCTestCase {
    /// The architecture each fixture model was built with (see scripts/make-keras-fixtures.py).
    static let styles: [(style: String, config: UNetConfig)] = [
        ("named", UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2)),
        ("auto", UNetConfig(inputChannels: 1, baseFilters: 2, depth: 2)),
    ]

    /// Every kind and naming style, imported, gives Keras's own inference output within 1e-5.
    func testImportedModelsMatchKerasOutputs() throws {
        let io = try SafeTensors.read(path: kerasFixtures + "/io.safetensors").tensors
        for (style, config) in Self.styles {
            let x = try XCTUnwrap(io["\(style).x"]), expected = try XCTUnwrap(io["\(style).out"])
            for suffix in [".keras", ".h5", ".weights.h5"] {
                let path = "\(kerasFixtures)/\(style)\(suffix)"
                let (model, metadata) = try ModelFile.load(path: path)
                XCTAssertEqual(model.config, config, path)
                XCTAssertEqual(metadata[ModelFile.sourceKey]?.hasPrefix("keras "), true, path)
                let out = model.forward(x, training: false)
                let difference = maxAbsoluteDifference(out, expected)
                print("keras import \(style)\(suffix): max |ranksweep - keras| = \(difference)")
                XCTAssertLessThan(difference, 1e-5, path)
            }
        }
    }

    /// A Keras 2 legacy .h5 (tf_keras: `kernel:0` weight names, Keras 2 config, levels named from 1).
    func testKeras2LegacyH5MatchesKerasOutputs() throws {
        let io = try SafeTensors.read(path: kerasFixtures + "/io.safetensors").tensors
        let path = kerasFixtures + "/keras2-named.h5"
        let (model, _) = try ModelFile.load(path: path)
        XCTAssertEqual(model.config, UNetConfig(inputChannels: 3, baseFilters: 2, depth: 2))
        let difference = maxAbsoluteDifference(model.forward(try XCTUnwrap(io["keras2.x"]), training: false), try XCTUnwrap(io["keras2.out"]))
        print("keras import keras2-named.h5: max |ranksweep - keras| = \(difference)")
        XCTAssertLessThan(difference, 1e-5)
    }

    /// The files with a config record the input size they were built for; weights-only files cannot.
    func testImageSizeFromConfig() throws {
        XCTAssertEqual(try ModelFile.load(path: kerasFixtures + "/named.keras").metadata[ModelFile.imageSizeKey], "16")
        XCTAssertEqual(try ModelFile.load(path: kerasFixtures + "/auto.h5").metadata[ModelFile.imageSizeKey], "16")
        XCTAssertNil(try ModelFile.load(path: kerasFixtures + "/auto.weights.h5").metadata[ModelFile.imageSizeKey])
    }

    /// import-keras writes a ranksweep safetensors file that loads by itself with the same outputs.
    func testImportWritesSafetensorsThatReload() throws {
        let dir = try temporaryDirectory("import")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let io = try SafeTensors.read(path: kerasFixtures + "/io.safetensors").tensors
        let imported = try ModelFile.importKeras(path: kerasFixtures + "/auto.keras", to: dir + "/model.safetensors")
        let (reloaded, metadata) = try UNet.load(path: dir + "/model.safetensors")
        XCTAssertEqual(reloaded.config, imported.config)
        XCTAssertEqual(metadata[ModelFile.sourceKey], "keras .keras auto.keras")
        let x = try XCTUnwrap(io["auto.x"])
        XCTAssertEqual(reloaded.forward(x, training: false).storage, imported.forward(x, training: false).storage)
        // The dispatch also takes ranksweep's own files, and import-keras refuses them.
        XCTAssertEqual(try ModelFile.load(path: dir + "/model.safetensors").model.config, imported.config)
        XCTAssertThrowsError(try ModelFile.importKeras(path: dir + "/model.safetensors", to: dir + "/again.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/again.safetensors"))
    }

    /// Reference names map by name, whatever the order, with levels numbered from 0 or from 1
    /// (`enc1` … `encD`, as some scripts name them); automatic names map by order.
    func testReferenceNamesMapByNameInAnyOrder() throws {
        let io = try SafeTensors.read(path: kerasFixtures + "/io.safetensors").tensors
        let x = try XCTUnwrap(io["named.x"]), expected = try XCTUnwrap(io["named.out"])
        var file = try KerasFile.readHDF5(path: kerasFixtures + "/named.h5")
        file.hasConfig = false
        file.layers = file.layers.filter { !$0.weights.isEmpty }.reversed()
        for i in file.layers.indices {
            file.layers[i].name = file.layers[i].name.replacingOccurrences(
                of: #"^(enc|dec|up)(\d+)"#, with: "$1#$2", options: .regularExpression)
            if let r = file.layers[i].name.range(of: #"#\d+"#, options: .regularExpression) {
                let level = Int(file.layers[i].name[r].dropFirst())!
                file.layers[i].name.replaceSubrange(r, with: String(level + 1))
            }
        }
        XCTAssertTrue(file.layers.contains { $0.name == "enc2_conv1" } && !file.layers.contains { $0.name.hasPrefix("enc0") })
        let byName = try KerasUNet.model(from: file).model
        XCTAssertLessThan(maxAbsoluteDifference(byName.forward(x, training: false), expected), 1e-5)
        // The same reversed order with automatic names cannot be mapped: the first convolution
        // taken is the head, whose kernel does not fit as the first one.
        for i in file.layers.indices { file.layers[i].name = "layer_\(i)" }
        XCTAssertThrowsError(try KerasUNet.model(from: file))
    }

    func assertMisfit(_ file: String, mentions words: [String], line: UInt = #line) {
        let path = "\(kerasFixtures)/\(file)"
        XCTAssertThrowsError(try ModelFile.load(path: path), line: line) { error in
            let text = "\(error)"
            print("misfit \(file): \(text)")
            XCTAssertTrue(text.hasPrefix(path + ": "), text, line: line)
            XCTAssertFalse(text.contains("\n"), text, line: line)
            for word in words { XCTAssertTrue(text.contains(word), "'\(word)' not in: \(text)", line: line) }
        }
    }

    /// A model that does not fit is one line naming the file, the first layer that differs and why.
    func testMisfitsNameTheLayerAndTheReason() {
        assertMisfit("misfit-dropout.keras", mentions: ["'bottleneck_dropout'", "Dropout", "no dropout"])
        assertMisfit("misfit-kernel5.h5", mentions: ["'enc0_conv1'", "5x5", "3x3"])
        assertMisfit("misfit-extra-conv.weights.h5", mentions: ["'conv2d_11'", "Conv2D", "12"])
    }

    /// Damaged or foreign files are errors naming the file, never a crash.
    func testDamagedFilesAreErrors() throws {
        let dir = try temporaryDirectory("damaged")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let named = try Data(contentsOf: URL(fileURLWithPath: kerasFixtures + "/named.keras"))
        let cases: [(String, Data, String)] = [
            ("truncated.keras", named.prefix(named.count / 2), "ZIP"),
            ("truncated.h5", try Data(contentsOf: URL(fileURLWithPath: kerasFixtures + "/named.h5")).prefix(4000), "HDF5"),
            ("empty.weights.h5", Data(), "safetensors"),
            ("other.zip", try zipWithOneStoredMember(name: "readme.txt", contents: Data("hello".utf8)), "config.json"),
        ]
        for (name, data, word) in cases {
            let path = dir + "/" + name
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try ModelFile.load(path: path), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(path + ": ") && text.contains(word), text)
            }
        }
        XCTAssertThrowsError(try ModelFile.load(path: dir + "/missing.keras")) { XCTAssertTrue("\($0)".contains("cannot read")) }
    }

    func testKerasClassNamesToGroupNames() {
        XCTAssertEqual(KerasFile.snakeCase("Conv2DTranspose"), "conv2d_transpose")
        XCTAssertEqual(KerasFile.snakeCase("BatchNormalization"), "batch_normalization")
        XCTAssertEqual(KerasFile.snakeCase("ReLU"), "re_lu")
        XCTAssertEqual(KerasFile.snakeCase("Conv2D"), "conv2d")
        XCTAssertEqual(["conv2d_10", "conv2d", "conv2d_2"].sorted(by: KerasFile.autoNameOrder), ["conv2d", "conv2d_2", "conv2d_10"])
    }
}

/// A minimal ZIP archive with one stored member (for the "not a .keras archive" case).
func zipWithOneStoredMember(name: String, contents: Data) throws -> Data {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }
    let nameBytes = Array(name.utf8)
    var out: [UInt8] = [0x50, 0x4B, 0x03, 0x04] + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
        + le32(contents.count) + le32(contents.count) + le16(nameBytes.count) + le16(0) + nameBytes + Array(contents)
    let central = out.count
    out += [0x50, 0x4B, 0x01, 0x02] + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
        + le32(contents.count) + le32(contents.count) + le16(nameBytes.count) + le16(0) + le16(0) + le16(0) + le16(0)
        + le32(0) + le32(0) + nameBytes
    let centralSize = out.count - central
    out += [0x50, 0x4B, 0x05, 0x06] + le16(0) + le16(0) + le16(1) + le16(1) + le32(centralSize) + le32(central) + le16(0)
    return Data(out)
}
