import Foundation
import XCTest
@testable import Engine

/// Every layer's backward against central finite differences (eps 1e-2, float32 forward,
/// double accumulation of the probe loss; tolerance 2e-2 relative with a floor of 1e-2).
final class GradientCheckTests: XCTestCase {
    func testConv2DGradients() {
        var rng = SeededGenerator(seed: 3)
        for (k, cin, cout, bias) in [(3, 3, 4, true), (1, 5, 3, true), (5, 2, 3, false)] {
            let conv = Conv2D(name: "conv\(k)x\(k)", kernelSize: k, inChannels: cin, outChannels: cout,
                              useBias: bias, initializer: .glorotUniform, rng: &rng)
            if let b = conv.bias { b.value = randomTensor(b.value.shape, seed: 5) }
            checkGradients(of: conv, input: randomTensor([2, 5, 7, cin], seed: 11))
        }
        // A kernel taller than wide, and channel counts that take the 8-wide vector path.
        let tall = Conv2D(name: "conv5x3", kernel: randomTensor([5, 3, 8, 9], seed: 6, scale: 0.3),
                          bias: randomTensor([9], seed: 7))
        checkGradients(of: tall, input: randomTensor([2, 6, 5, 8], seed: 18))
    }

    func testConv2DGradientsWithTinyWorkspaceChunks() {
        // A workspace of 40 floats forces one output pixel per chunk: chunking must not change the result.
        var rng = SeededGenerator(seed: 4)
        let conv = Conv2D(name: "chunked", kernelSize: 3, inChannels: 2, outChannels: 3,
                          initializer: .glorotUniform, rng: &rng, workspace: Workspace(capacityFloats: 40, minimumRows: 1))
        checkGradients(of: conv, input: randomTensor([2, 4, 3, 2], seed: 12))
    }

    func testConv2DGradientsWhenRowsAreSplitAcrossCores() {
        // 2 x 32 x 32 = 2048 output pixels: forward and backward run one part per BLAS thread.
        var rng = SeededGenerator(seed: 8)
        let conv = Conv2D(name: "split", kernelSize: 3, inChannels: 2, outChannels: 3,
                          initializer: .glorotUniform, rng: &rng)
        checkGradients(of: conv, input: randomTensor([2, 32, 32, 2], seed: 17))
    }

    func testConvTransposeGradients() {
        var rng = SeededGenerator(seed: 5)
        let layer = ConvTranspose2D(name: "up", inChannels: 4, outChannels: 3, initializer: .glorotUniform, rng: &rng)
        layer.bias.value = randomTensor([3], seed: 6)
        checkGradients(of: layer, input: randomTensor([2, 3, 4, 4], seed: 13))
    }

    func testBatchNormGradientsInBothModes() {
        let bn = BatchNorm(name: "bn", channels: 3)
        bn.gamma.value = randomTensor([3], seed: 8, scale: 2)
        bn.beta.value = randomTensor([3], seed: 9)
        bn.movingMean.value = randomTensor([3], seed: 10, scale: 0.3)
        bn.movingVariance.value = Tensor(shape: [3], storage: [0.5, 1.5, 2])
        checkGradients(of: bn, input: randomTensor([2, 3, 4, 3], seed: 14), training: true)
        checkGradients(of: bn, input: randomTensor([2, 3, 4, 3], seed: 15), training: false)
    }

    func testActivationAndPoolingGradients() {
        // Inputs away from ReLU's kink and from pooling ties, where the derivative does not exist.
        var x = randomTensor([2, 4, 6, 3], seed: 16)
        for i in 0..<x.count where abs(x.storage[i]) < 0.05 { x.storage[i] = 0.3 }
        checkGradients(of: ReLU(name: "relu"), input: x, eps: 1e-3)
        checkGradients(of: Sigmoid(name: "sigmoid"), input: x, eps: 1e-3)
        checkGradients(of: MaxPool2D(name: "pool"), input: x, eps: 1e-3)
    }

    func testLowRankConvolutionGradients() {
        let layer = LowRankConv2D(name: "lr", firstKernel: randomTensor([3, 3, 3, 2], seed: 20),
                                  secondKernel: randomTensor([1, 1, 2, 4], seed: 21), bias: randomTensor([4], seed: 22))
        checkGradients(of: layer, input: randomTensor([2, 5, 4, 3], seed: 23))
    }

    /// The decoder's join in place: the transposed convolution writes channels 0..<3 of the joined
    /// tensor, the skip is copied after them; backward reads each part's gradient from the joined
    /// gradient, exactly as from separate tensors (the skip's by the pool's backward).
    func testJoinInPlaceMatchesSeparateTensors() {
        let x = randomTensor([2, 3, 2, 4], seed: 1), skip = randomTensor([2, 6, 4, 5], seed: 2)
        let up = ConvTranspose2D(name: "up", kernel: randomTensor([2, 2, 3, 4], seed: 3), bias: randomTensor([3], seed: 4))
        let separate = up.forward(x, training: true)
        var joined = Tensor(shape: [2, 6, 4, 8], repeating: .nan)
        up.forward(x, training: true, into: &joined, channelOffset: 0)
        Concat.copy(skip, into: &joined, channelOffset: 3)
        XCTAssertFalse(joined.storage.contains { $0.isNaN }, "every element written")
        XCTAssertEqual(joined[1, 5, 3, 2], separate[1, 5, 3, 2])
        XCTAssertEqual(joined[1, 5, 3, 3], skip[1, 5, 3, 0])
        XCTAssertEqual(joined[0, 2, 1, 7], skip[0, 2, 1, 4])

        let dJoined = randomTensor([2, 6, 4, 8], seed: 5)
        var dUp = Tensor.zeros([2, 6, 4, 3])
        for p in 0..<(2 * 6 * 4) { for ch in 0..<3 { dUp.storage[p * 3 + ch] = dJoined.storage[p * 8 + ch] } }
        up.kernel.zeroGrad(); up.bias.zeroGrad()
        let dxSeparate = up.backward(dUp)
        let (dkSeparate, dbSeparate) = (up.kernel.grad, up.bias.grad)
        up.kernel.zeroGrad(); up.bias.zeroGrad()
        XCTAssertEqual(up.backward(dJoined, channelOffset: 0), dxSeparate)
        XCTAssertEqual(up.kernel.grad, dkSeparate)
        XCTAssertEqual(up.bias.grad, dbSeparate)

        // The encoder's BatchNorm writes the skip into the joined tensor itself, and the pool reads
        // it from there: the same values and winners as from a separate tensor.
        let bn = BatchNorm(name: "bn", channels: 5, reluAfter: true)
        bn.gamma.value = randomTensor([5], seed: 7, scale: 2)
        let preActivation = randomTensor([2, 6, 4, 5], seed: 8)
        let skipAlone = bn.forward(preActivation, training: true)
        var joinedBySkip = Tensor(shape: [2, 6, 4, 8], repeating: .nan)
        bn.forward(preActivation, training: true, into: &joinedBySkip, channelOffset: 3)
        for p in 0..<(2 * 6 * 4) {
            for ch in 0..<5 { XCTAssertEqual(joinedBySkip.storage[p * 8 + 3 + ch], skipAlone.storage[p * 5 + ch]) }
            for ch in 0..<3 { XCTAssertTrue(joinedBySkip.storage[p * 8 + ch].isNaN, "channels outside the slice untouched") }
        }
        let pooledAlone = MaxPool2D(name: "alone").forward(skipAlone, training: true)
        let pool = MaxPool2D(name: "pool")
        XCTAssertEqual(pool.forward(joinedBySkip, channelOffset: 3, channels: 5), pooledAlone)
        // The skip's gradient from the joined tensor is added by the pool's backward, in its pass.
        let dPooled = randomTensor([2, 3, 2, 5], seed: 6)
        let alone = pool.backward(dPooled)
        let summed = pool.backward(dPooled, adding: dJoined, channelOffset: 3)
        XCTAssertEqual(summed.shape, skip.shape)
        for p in 0..<(2 * 6 * 4) { for ch in 0..<5 {
            XCTAssertEqual(summed.storage[p * 5 + ch], alone.storage[p * 5 + ch] + dJoined.storage[p * 8 + 3 + ch])
        } }
    }

    func testLossGradients() {
        let p = Tensor(shape: [2, 3, 3, 1], storage: randomTensor([18], seed: 30).storage.map { 0.5 + 0.45 * $0 })
        let y = Tensor(shape: [2, 3, 3, 1], storage: randomTensor([18], seed: 31).storage.map { $0 > 0 ? 1 : 0 })
        for loss in Loss.allCases {
            let g = loss.evaluate(probabilities: p, targets: y).gradient
            for i in 0..<p.count {
                var plus = p, minus = p
                plus.storage[i] += 1e-3; minus.storage[i] -= 1e-3
                let numeric = (loss.evaluate(probabilities: plus, targets: y).loss
                               - loss.evaluate(probabilities: minus, targets: y).loss) / 2e-3
                XCTAssertEqual(g.storage[i], numeric, accuracy: 2e-3, "\(loss) at \(i)")
            }
        }
    }

    /// The whole tiny U-Net, loss included: for every trainable tensor, the directional derivative
    /// along a random direction (sum of gradient * direction) against central differences of the
    /// loss along that direction. Summing over a whole tensor keeps float32 noise small.
    func testWholeUNetGradient() {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 42)
        let input = Tensor(shape: [2, 16, 16, 3], storage: randomTensor([2, 16, 16, 3], seed: 40).storage.map { abs($0) })
        var y = Tensor.zeros([2, 16, 16, 1])
        for i in 0..<y.count where i % 3 == 0 { y.storage[i] = 1 }
        // The probe loss in double: the float32 loss would round away the small differences.
        func loss() -> Double {
            let p = model.forward(input, training: true)
            var bce = 0.0, inter = 0.0, sum = 0.0
            for i in 0..<p.count {
                let pi = Double(p.storage[i]), yi = Double(y.storage[i])
                bce -= yi * log(pi) + (1 - yi) * log(1 - pi)
                inter += yi * pi; sum += yi + pi
            }
            return bce / Double(p.count) + 1 - (2 * inter + 1) / (sum + 1)
        }
        model.zeroGradients()
        let p = model.forward(input, training: true)
        model.backward(Loss.bceDice.evaluate(probabilities: p, targets: y).gradient)
        var rng = SeededGenerator(seed: 41)
        var errors: [Float] = []
        for param in model.trainableParameters {
            let grad = param.grad
            for _ in 0..<4 {
                let i = Int(rng.next() % UInt64(param.value.count))
                let saved = param.value.storage[i]
                let eps: Float = 1e-3  // larger crosses more kinks, smaller drowns in float32 rounding
                param.value.storage[i] = saved + eps; let lp = loss()
                param.value.storage[i] = saved - eps; let lm = loss()
                param.value.storage[i] = saved
                let numeric = (lp - lm) / Double(2 * eps), analytic = Double(grad.storage[i])
                // Floor 1e-3: biases of convolutions before BatchNorm have a true gradient of zero.
                errors.append(Float(abs(numeric - analytic) / max(1e-3, abs(numeric), abs(analytic))))
            }
        }
        errors.sort()
        let within = errors.filter { $0 < 5e-2 }.count
        print("whole U-Net gradient check: \(within)/\(errors.count) entries within 5e-2, median error \(errors[errors.count / 2]), worst \(errors.last!)")
        // A probe that moves a pre-activation across a ReLU kink or flips a max-pool winner measures
        // a one-sided slope; such entries are few. The bulk must agree closely.
        XCTAssertGreaterThanOrEqual(Double(within) / Double(errors.count), 0.85)
        XCTAssertLessThan(errors[errors.count / 2], 1e-2)
    }
}
