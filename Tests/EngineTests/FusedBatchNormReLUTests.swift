import XCTest
@testable import Engine

/// BatchNorm with `reluAfter` (what the U-Net's blocks use) must equal BatchNorm followed by a
/// separate ReLU, forward and backward, in both modes and for channel counts on and off the
/// 8-wide vector path.
final class FusedBatchNormReLUTests: XCTestCase {
    func testFusedEqualsBatchNormThenReLU() {
        for channels in [3, 8, 16, 20] {
            for training in [true, false] {
                let fused = BatchNorm(name: "fused", channels: channels, reluAfter: true)
                let plain = BatchNorm(name: "plain", channels: channels)
                let relu = ReLU(name: "relu")
                for bn in [fused, plain] {
                    bn.gamma.value = randomTensor([channels], seed: 40, scale: 2)
                    bn.beta.value = randomTensor([channels], seed: 41)
                    bn.movingMean.value = randomTensor([channels], seed: 42, scale: 0.3)
                    bn.movingVariance.value = Tensor(shape: [channels], repeating: 1.5)
                }
                // Enough rows (2 x 64 x 64) that the loops split across threads.
                let x = randomTensor([2, 64, 64, channels], seed: 43)
                let dy = randomTensor([2, 64, 64, channels], seed: 44)
                let yFused = fused.forward(x, training: training)
                let yPlain = relu.forward(plain.forward(x, training: training), training: training)
                XCTAssertEqual(yFused.maxAbsDifference(yPlain), 0, "forward, \(channels) channels, training \(training)")
                XCTAssertGreaterThan(yFused.storage.filter { $0 == 0 }.count, yFused.count / 10, "the ReLU clips something")
                let dxFused = fused.backward(dy)
                let dxPlain = plain.backward(relu.backward(dy))
                XCTAssertLessThanOrEqual(dxFused.maxAbsDifference(dxPlain), 1e-5, "dx, \(channels) channels, training \(training)")
                XCTAssertLessThanOrEqual(fused.gamma.grad.maxAbsDifference(plain.gamma.grad), 1e-3 * max(1, plain.gamma.grad.storage.map(abs).max()!))
                XCTAssertLessThanOrEqual(fused.beta.grad.maxAbsDifference(plain.beta.grad), 1e-3 * max(1, plain.beta.grad.storage.map(abs).max()!))
            }
        }
    }
}

/// Inference folds each BatchNorm (and its ReLU) into the convolution before it: the result must
/// equal running the layers one by one, for a full convolution and for a factorised pair.
final class FoldedInferenceTests: XCTestCase {
    func testFoldedBlockEqualsLayerByLayer() {
        var rng = SeededGenerator(seed: 50)
        let block = ConvBlock(prefix: "blk", inChannels: 5, filters: 16, momentum: 0.99, rng: &rng, workspace: Workspace())
        block.conv2 = LowRankConv2D(name: "blk_conv2", firstKernel: randomTensor([3, 3, 16, 6], seed: 51, scale: 0.3),
                                    secondKernel: randomTensor([1, 1, 6, 16], seed: 52, scale: 0.5), bias: randomTensor([16], seed: 53))
        for (index, bn) in [block.bn1, block.bn2].enumerated() {
            let seed = UInt64(60 + 10 * index)
            bn.gamma.value = randomTensor([16], seed: seed, scale: 2)
            bn.beta.value = randomTensor([16], seed: seed + 1)
            bn.movingMean.value = randomTensor([16], seed: seed + 2, scale: 0.5)
            bn.movingVariance.value = Tensor(shape: [16], storage: randomTensor([16], seed: seed + 3).storage.map { 0.5 + abs($0) })
        }
        let x = randomTensor([3, 12, 10, 5], seed: 54)
        let folded = block.forward(x, training: false)
        var reference = x
        for layer in block.layers { reference = layer.forward(reference, training: false) }
        let scale = reference.storage.map(abs).max()!
        XCTAssertGreaterThan(scale, 0.1)
        XCTAssertLessThanOrEqual(folded.maxAbsDifference(reference), 1e-5 * scale)
        XCTAssertGreaterThan(folded.storage.filter { $0 == 0 }.count, folded.count / 10, "the ReLU clips something")
    }
}
