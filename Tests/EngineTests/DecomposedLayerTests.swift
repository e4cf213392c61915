import Foundation
import XCTest
@testable import Engine

/// Tucker-2 and spatial-SVD layers: gradients against finite differences, BatchNorm folding, and
/// a model holding both saved and loaded back from their own tensor names.
final class DecomposedLayerTests: XCTestCase {
    func testTucker2Gradients() {
        let layer = Tucker2Conv2D(name: "t", firstKernel: randomTensor([1, 1, 3, 2], seed: 30),
                                  coreKernel: randomTensor([3, 3, 2, 3], seed: 31), lastKernel: randomTensor([1, 1, 3, 4], seed: 32),
                                  bias: randomTensor([4], seed: 33))
        checkGradients(of: layer, input: randomTensor([2, 5, 4, 3], seed: 34))
    }

    func testSpatialSVDGradients() {
        let layer = SpatialSVDConv2D(name: "s", verticalKernel: randomTensor([3, 1, 3, 2], seed: 40),
                                     horizontalKernel: randomTensor([1, 3, 2, 4], seed: 41), bias: randomTensor([4], seed: 42))
        checkGradients(of: layer, input: randomTensor([2, 5, 4, 3], seed: 43))
    }

    /// The kx1 and 1xk halves on their own, with channel counts on the 8-wide vector path.
    func testOneDimensionalKernelGradients() {
        checkGradients(of: Conv2D(name: "v", kernel: randomTensor([3, 1, 8, 9], seed: 44, scale: 0.3), bias: nil),
                       input: randomTensor([2, 6, 5, 8], seed: 45))
        checkGradients(of: Conv2D(name: "h", kernel: randomTensor([1, 3, 9, 8], seed: 46, scale: 0.3), bias: randomTensor([8], seed: 47)),
                       input: randomTensor([2, 6, 5, 9], seed: 48))
    }

    func testFoldedInferenceEqualsLayerByLayer() {
        let layers: [any ConvolutionLayer] = [
            Tucker2Conv2D(name: "t", firstKernel: randomTensor([1, 1, 16, 6], seed: 1, scale: 0.3),
                          coreKernel: randomTensor([3, 3, 6, 5], seed: 2, scale: 0.3), lastKernel: randomTensor([1, 1, 5, 16], seed: 3, scale: 0.5),
                          bias: randomTensor([16], seed: 4)),
            SpatialSVDConv2D(name: "s", verticalKernel: randomTensor([3, 1, 16, 7], seed: 5, scale: 0.3),
                             horizontalKernel: randomTensor([1, 3, 7, 16], seed: 6, scale: 0.3), bias: randomTensor([16], seed: 7)),
        ]
        let bn = BatchNorm(name: "bn", channels: 16, reluAfter: true)
        bn.gamma.value = randomTensor([16], seed: 8, scale: 2)
        bn.movingMean.value = randomTensor([16], seed: 9, scale: 0.5)
        bn.movingVariance.value = Tensor(shape: [16], storage: randomTensor([16], seed: 10).storage.map { 0.5 + abs($0) })
        let x = randomTensor([2, 9, 7, 16], seed: 11)
        for layer in layers {
            let reference = bn.forward(layer.forward(x, training: false), training: false)
            let folded = layer.inferenceForward(x, foldingIn: bn)
            let scale = reference.storage.map(abs).max()!
            XCTAssertGreaterThan(scale, 0.1)
            XCTAssertLessThanOrEqual(folded.maxAbsDifference(reference), 1e-5 * scale, layer.name)
        }
    }

    func testSafetensorsRoundTripOfTucker2AndSpatialSVDLayers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-decomposed-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = UNet(config: UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2), seed: 9)
        model.replaceConvolution(named: "enc1_conv2", with: Tucker2Conv2D(
            name: "enc1_conv2", firstKernel: randomTensor([1, 1, 8, 3], seed: 4), coreKernel: randomTensor([3, 3, 3, 2], seed: 5),
            lastKernel: randomTensor([1, 1, 2, 8], seed: 6), bias: randomTensor([8], seed: 7)))
        model.replaceConvolution(named: "dec0_conv1", with: SpatialSVDConv2D(
            name: "dec0_conv1", verticalKernel: randomTensor([3, 1, 8, 5], seed: 8),
            horizontalKernel: randomTensor([1, 3, 5, 4], seed: 9), bias: randomTensor([4], seed: 10)))
        XCTAssertEqual(Set(model.stateDictionary.keys.filter { $0.hasPrefix("enc1_conv2.") || $0.hasPrefix("dec0_conv1.") }),
                       ["enc1_conv2.t1.kernel", "enc1_conv2.core.kernel", "enc1_conv2.t2.kernel", "enc1_conv2.t2.bias",
                        "dec0_conv1.v.kernel", "dec0_conv1.h.kernel", "dec0_conv1.h.bias"])
        let path = dir.appendingPathComponent("m.safetensors").path
        try model.save(to: path)
        let (loaded, _) = try UNet.load(path: path)
        let tucker = try XCTUnwrap(loaded.encoders[1].conv2 as? Tucker2Conv2D)
        XCTAssertEqual([tucker.inputRank, tucker.outputRank], [3, 2])
        XCTAssertEqual((loaded.decoders[0].conv1 as? SpatialSVDConv2D)?.rank, 5)
        let x = randomTensor([2, 8, 8, 1], seed: 11)
        XCTAssertEqual(loaded.forward(x, training: false), model.forward(x, training: false))

        // A core that does not chain is named in the error.
        var tensors = model.stateDictionary
        tensors["enc1_conv2.core.kernel"] = randomTensor([3, 3, 4, 2], seed: 12)
        XCTAssertThrowsError(try UNet(config: model.config, seed: 0).assign(tensors, path: "bad.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("Tucker-2 layer enc1_conv2"), "\(error)")
        }
    }
}
