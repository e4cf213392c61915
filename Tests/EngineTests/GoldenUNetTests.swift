import XCTest
@testable import Engine

/// A whole tiny U-Net (depth 2, filters 4/8/16, input 16x16x3, batch 2) against Keras:
/// inference and training outputs, the loss, every gradient, and one Adam step.
/// Tolerance about 1e-4 (TensorFlow's oneDNN sums in another order), per the golden README.
final class GoldenUNetTests: XCTestCase {
    /// The choices `makeModel`'s convolutions plan by.
    var modelChoices = EngineChoices.current

    func makeModel() throws -> UNet {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 1)
        try model.assign(try golden("unet_tiny/weights.safetensors"), path: "unet_tiny/weights.safetensors")
        model.setEngineChoices(modelChoices)
        return model
    }

    func testOutputsAndLossMatchKeras() throws {
        let io = try golden("unet_tiny/io.safetensors")
        let model = try makeModel()
        let inference = model.forward(io["x"]!, training: false)
        let inferErr = maxRelativeError(inference, io["infer_out"]!)
        let train = model.forward(io["x"]!, training: true)
        let trainErr = maxRelativeError(train, io["train_out"]!)
        let loss = Loss.bceDice.evaluate(probabilities: train, targets: io["y"]!).loss
        print("golden unet: inference \(inferErr), training \(trainErr), loss \(loss) vs \(io["loss"]!.storage[0])")
        XCTAssertLessThan(inferErr, 1e-4)
        XCTAssertLessThan(trainErr, 1e-4)
        XCTAssertEqual(loss, io["loss"]!.storage[0], accuracy: 1e-4 * max(1, abs(loss)))
    }

    func testEveryGradientMatchesKeras() throws {
        try checkEveryGradientMatchesKeras()
    }

    /// The tiny model's layers are too narrow for Winograd by default; run every 3x3 convolution
    /// through it (F(4x4, 3x3) on the 16x16 level, F(2x2, 3x3) below, the weight gradient too) and
    /// hold it to the same bounds.
    func testWinogradOnEveryLayerStillMatchesKeras() throws {
        // The F(4x4) weight-gradient minimum is recorded as at least F(4x4)'s (see `EngineChoices`).
        modelChoices = engineChoices {
            $0.winogradMinimumChannels = 1; $0.winogradF4MinimumChannels = 1; $0.winogradWeightsMinimumChannels = 1
            $0.winogradF4WeightsMinimumChannels = max(EngineChoices.winogradF4WeightsDefault, 1)
        }
        let model = try makeModel()
        let plans = model.convolutionSizes(height: 16, width: 16).compactMap { entry in
            (entry.layer as? Conv2D).flatMap { $0.kernelHeight == 3 ? $0.plan(height: entry.height, width: entry.width) : nil }
        }
        XCTAssertEqual(plans.count, 10)
        let winograd: Set<ConvolutionPlan.Algorithm> = [.winogradF2, .winogradF4]
        XCTAssertTrue(plans.allSatisfy { winograd.contains($0.forward) })
        XCTAssertTrue(plans.allSatisfy { winograd.contains($0.weightGradient) })
        XCTAssertTrue(plans.contains { $0.forward == .winogradF4 })
        try testOutputsAndLossMatchKeras()
        try checkEveryGradientMatchesKeras()
    }

    func checkEveryGradientMatchesKeras() throws {
        let io = try golden("unet_tiny/io.safetensors")
        let grads = try golden("unet_tiny/grads.safetensors")
        let model = try makeModel()
        let p = model.forward(io["x"]!, training: true)
        model.zeroGradients()
        model.backward(Loss.bceDice.evaluate(probabilities: p, targets: io["y"]!).gradient)
        var worst: Float = 0
        for param in model.trainableParameters {
            guard let expected = grads[param.name] else { XCTFail("golden lacks \(param.name)"); continue }
            // Compare relative to the tensor's own scale. Biases of convolutions followed by BatchNorm
            // have a true gradient of zero (the batch mean cancels them; Keras gives ~1e-8 noise), so
            // the scale has a floor of 1e-4, well below every real gradient here (>= 1e-2).
            let scale = max(expected.storage.map(abs).max() ?? 0, 1e-4)
            let err = param.grad.maxAbsDifference(expected) / scale
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-3, "\(param.name): error relative to tensor scale \(err)")
        }
        XCTAssertEqual(model.trainableParameters.count, grads.count)
        print("golden unet gradients: worst error relative to tensor scale \(worst)")
    }

    func testOneAdamStepMatchesKeras() throws {
        let io = try golden("unet_tiny/io.safetensors")
        let after = try golden("unet_tiny/after_step.safetensors")
        let model = try makeModel()
        let adam = Adam(parameters: model.trainableParameters, learningRate: 1e-3)
        let p = model.forward(io["x"]!, training: true)
        model.zeroGradients()
        model.backward(Loss.bceDice.evaluate(probabilities: p, targets: io["y"]!).gradient)
        adam.update()
        var worst: Float = 0
        for param in model.parameters {
            guard let expected = after[param.name] else { XCTFail("golden lacks \(param.name)"); continue }
            let err = maxRelativeError(param.value, expected)
            worst = max(worst, err)
            XCTAssertLessThan(err, 1e-4, param.name)
        }
        print("golden unet after one Adam step: worst relative error \(worst)")
    }
}
