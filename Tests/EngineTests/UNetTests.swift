import Foundation
import XCTest
@testable import Engine

final class UNetTests: XCTestCase {
    /// The Keras reference architectures (unet-small, unet-paper), exactly. FLOPs (2 x multiply-adds)
    /// per image, layer by layer, for an S x S input with F base filters: a 3x3 convolution on an
    /// s x s image costs 2·s²·9·cin·cout, the 2x2 stride-2 transposed convolution 2·s²·4·cin·cout on
    /// its s x s input, the 1x1 head 2·S²·F. Level l (s = S/2^l, f = F·2^l, so s·f = S·F):
    /// - level 0 encoder: 2·S²·9·(3·F + F·F);
    /// - each deeper encoder level and the bottleneck (f/2 -> f -> f): 2·9·s²·(f/2·f + f·f) = 27·(S·F)²;
    /// - each decoder level: up-sampling 2·(s/2)²·4·(2f)·f = 4·(s·f)², then 2f -> f -> f, 2·9·s²·(2f·f + f·f)
    ///   = 54·(s·f)²: 58·(S·F)².
    func testParameterAndFlopCountsMatchKerasReference() {
        func flops(side S: Int, filters F: Int, depth: Int) -> Int {
            2 * S * S * 9 * (3 * F + F * F) + depth * 27 * (S * F) * (S * F) + depth * 58 * (S * F) * (S * F) + 2 * S * S * F
        }
        let small = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 16, depth: 4), seed: 1)
        XCTAssertEqual(small.parameterCount, 1_946_993)
        XCTAssertEqual(small.trainableParameterCount, 1_944_049)
        // 89,653,248 + 4 x 113,246,208 + 4 x 243,269,632 + 524,288 = 1,516,240,896 (Keras: 1.516 G).
        XCTAssertEqual(flops(side: 128, filters: 16, depth: 4), 1_516_240_896)
        XCTAssertEqual(small.flopsPerImage(height: 128, width: 128), flops(side: 128, filters: 16, depth: 4))
        XCTAssertEqual(Double(small.flopsPerImage(height: 128, width: 128)) / 1e9, 1.516, accuracy: 5e-4)
        let paper = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 64, depth: 4), seed: 1)
        XCTAssertEqual(paper.parameterCount, 31_055_297)
        XCTAssertEqual(paper.trainableParameterCount, 31_043_521)
        // 5,058,330,624 + 4 x 7,247,757,312 + 4 x 15,569,256,448 + 8,388,608 = 96,334,774,272 (Keras: 96.33 G).
        XCTAssertEqual(flops(side: 256, filters: 64, depth: 4), 96_334_774_272)
        XCTAssertEqual(paper.flopsPerImage(height: 256, width: 256), flops(side: 256, filters: 64, depth: 4))
        XCTAssertEqual(Double(paper.flopsPerImage(height: 256, width: 256)) / 1e9, 96.33, accuracy: 5e-3)
    }

    /// unet-small's plan table at its training size (128x128, as `bench engine` and the sweeps run
    /// it) with the default thresholds: which algorithm runs each pass of every convolution. The
    /// rules do not depend on the CPU; the instruction sets do (the direct kernels' best ISA, and the
    /// Winograd small GEMM on AVX-512 only), and are printed.
    func testConvolutionPlansOfUNetSmallAtItsTrainingSize() {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 16, depth: 4), seed: 1)
        let direct = DirectConvolution.bestSupportedISA
        // The defaults, whatever RANKSWEEP_* variables this process was started with.
        model.setEngineChoices(engineChoices {
            $0.winogradMinimumChannels = EngineChoices.winogradDefault
            $0.winogradF4MinimumChannels = EngineChoices.winogradF4Default
            $0.winogradWeightsMinimumChannels = EngineChoices.winogradWeightsDefault
            $0.winogradF4WeightsMinimumChannels = max(EngineChoices.winogradF4WeightsDefault, EngineChoices.winogradF4Default)
            $0.winogradSmallGemmMaximumChannels = Winograd.smallGemmSupported ? EngineChoices.winogradSmallGemmDefault : nil
            $0.directConvolution = direct.name
        })
        let plans = model.convolutionPlans(height: 128, width: 128)
        for p in plans {
            print("plan \(p.layer): forward \(p.forward), dX \(p.inputGradient), dW \(p.weightGradient), \(p.isa)")
        }
        typealias Row = (layer: String, forward: String, inputGradient: String, weightGradient: String)
        let (d, f2, f4) = ("direct", "Winograd F(2x2,3x3)", "Winograd F(4x4,3x3)")
        let expected: [Row] = [
            // 128x128, 3 -> 16 and 16 -> 16: too narrow for Winograd; the image needs no dX.
            ("enc0_conv1", d, "none", d), ("enc0_conv2", d, d, d),
            // 64x64: 16 -> 32 is below Winograd's 32 channels; 32 -> 32 runs F(4x4) with its dW direct.
            ("enc1_conv1", d, d, d), ("enc1_conv2", f4, f4, d),
            // 32x32 and 16x16: F(4x4) every pass.
            ("enc2_conv1", f4, f4, f4), ("enc2_conv2", f4, f4, f4), ("enc3_conv1", f4, f4, f4), ("enc3_conv2", f4, f4, f4),
            // 8x8 is below F(4x4)'s 16 pixels: F(2x2), its dW too from 64 channels.
            ("bottleneck_conv1", f2, f2, f2), ("bottleneck_conv2", f2, f2, f2),
            ("dec3_conv1", f4, f4, f4), ("dec3_conv2", f4, f4, f4), ("dec2_conv1", f4, f4, f4), ("dec2_conv2", f4, f4, f4),
            // 64 -> 32 is too wide for the direct kernels: F(4x4) dW.
            ("dec1_conv1", f4, f4, f4), ("dec1_conv2", f4, f4, d),
            ("dec0_conv1", d, d, d), ("dec0_conv2", d, d, d),
            ("head", "pointwise GEMM", "pointwise GEMM", "pointwise GEMM"),
        ]
        XCTAssertEqual(plans.count, expected.count)
        for (plan, row) in zip(plans, expected) {
            XCTAssertEqual(plan.layer, row.layer)
            XCTAssertEqual([plan.forward, plan.inputGradient, plan.weightGradient], [row.forward, row.inputGradient, row.weightGradient],
                           row.layer)
            // Layers with a direct pass report its ISA (the 32 -> 32 ones, whose Winograd products
            // may also run the small GEMM, too); every other layer's products go to OpenBLAS.
            let usesDirect = [row.forward, row.inputGradient, row.weightGradient].contains(d)
            XCTAssertEqual(plan.isa, usesDirect ? direct.name : "BLAS", row.layer)
        }
        // The small GEMM's part of the plan, pass by pass, on the 32 -> 32 layer.
        let narrowWinograd = model.encoders[1].conv2 as! Conv2D
        let smallGemm: DirectConvolution.ISA? = Winograd.smallGemmSupported ? .avx512 : nil
        XCTAssertEqual(narrowWinograd.plan(height: 64, width: 64).forwardSmallGemm, smallGemm)
        XCTAssertEqual(narrowWinograd.plan(height: 64, width: 64).inputGradientSmallGemm, smallGemm)
        print("unet-small plans on this CPU: direct kernels \(direct.name), Winograd small GEMM \(smallGemm?.name ?? "off (no AVX-512)")")
    }

    func testLayerNamesFollowKerasReference() {
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 1)
        let names = Set(model.parameters.map(\.name))
        for expected in ["enc0_conv1.kernel", "enc1_bn2.moving_variance", "bottleneck_conv2.bias", "up1.kernel",
                         "dec0_bn1.gamma", "head.kernel", "head.bias"] {
            XCTAssertTrue(names.contains(expected), expected)
        }
        XCTAssertEqual(model.stateDictionary["up1.kernel"]?.shape, [2, 2, 8, 16])
    }

    func testSafetensorsRoundTripGivesIdenticalPredictions() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-engine-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = UNet(config: UNetConfig(inputChannels: 1, baseFilters: 4, depth: 2, bnMomentum: 0.9), seed: 9)
        for bn in model.batchNorms { bn.movingMean.value = randomTensor(bn.movingMean.value.shape, seed: 3) }
        model.replaceConvolution(named: "enc1_conv2", with: LowRankConv2D(
            name: "enc1_conv2", firstKernel: randomTensor([3, 3, 8, 2], seed: 4),
            secondKernel: randomTensor([1, 1, 2, 8], seed: 5), bias: randomTensor([8], seed: 6)))
        let path = dir.appendingPathComponent("m.safetensors").path
        try model.save(to: path, metadata: ["note": "test"])
        let (loaded, metadata) = try UNet.load(path: path)
        XCTAssertEqual(metadata["note"], "test")
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual((loaded.encoders[1].conv2 as? LowRankConv2D)?.rank, 2)
        let x = randomTensor([2, 8, 8, 1], seed: 7)
        XCTAssertEqual(loaded.forward(x, training: false), model.forward(x, training: false))
        // No temporary file left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.safetensors"])
    }

    func testMalformedFilesAreRejectedWithTheirName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-engine-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 2, depth: 1), seed: 1)
        let good = dir.appendingPathComponent("good.safetensors").path
        try model.save(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))

        func expectError(_ name: String, _ data: Data, containing text: String) throws {
            let path = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try UNet.load(path: path), name) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(name), "message should name the file: \(message)")
                XCTAssertTrue(message.contains(text), "expected '\(text)' in: \(message)")
            }
        }
        try expectError("truncated.safetensors", bytes.prefix(bytes.count - 10), containing: "outside")
        try expectError("tiny.safetensors", Data([1, 2, 3]), containing: "not a safetensors file")
        try expectError("text.safetensors", Data("hello this is not a model at all".utf8), containing: "safetensors")
        var f16 = bytes
        let f32Tag = Data("\"F32\"".utf8)
        if let range = f16.range(of: f32Tag) { f16.replaceSubrange(range, with: Data("\"F16\"".utf8)) }
        try expectError("f16.safetensors", f16, containing: "dtype F16")
        // A valid file of another architecture: shapes do not match the metadata's.
        let other = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 1), seed: 1)
        var tensors = other.stateDictionary
        let config = String(decoding: try JSONEncoder().encode(model.config), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: [UNet.architectureKey: config], to: dir.appendingPathComponent("shapes.safetensors").path)
        XCTAssertThrowsError(try UNet.load(path: dir.appendingPathComponent("shapes.safetensors").path)) { error in
            XCTAssertTrue("\(error)".contains("shapes.safetensors") && "\(error)".contains("has shape"), "\(error)")
        }
        tensors = model.stateDictionary
        tensors.removeValue(forKey: "head.bias")
        try SafeTensors.write(tensors, metadata: [UNet.architectureKey: config], to: dir.appendingPathComponent("missing.safetensors").path)
        XCTAssertThrowsError(try UNet.load(path: dir.appendingPathComponent("missing.safetensors").path)) { error in
            XCTAssertTrue("\(error)".contains("missing tensor 'head.bias'"), "\(error)")
        }
        try SafeTensors.write(model.stateDictionary, to: dir.appendingPathComponent("nometa.safetensors").path)
        XCTAssertThrowsError(try UNet.load(path: dir.appendingPathComponent("nometa.safetensors").path)) { error in
            XCTAssertTrue("\(error)".contains("not a ranksweep U-Net"), "\(error)")
        }
    }

    func testTrainingStepIsDeterministic() {
        func weightsAfterTwoSteps() -> [Float] {
            let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 123)
            let adam = Adam(parameters: model.trainableParameters, learningRate: 1e-3)
            let x = randomTensor([2, 16, 16, 3], seed: 1)
            let y = Tensor(shape: [2, 16, 16, 1], storage: randomTensor([512], seed: 2).storage.map { $0 > 0.3 ? 1 : 0 })
            for _ in 0..<2 {
                model.zeroGradients()
                let p = model.forward(x, training: true)
                model.backward(Loss.bceDice.evaluate(probabilities: p, targets: y).gradient)
                adam.update()
            }
            return model.parameters.flatMap(\.value.storage)
        }
        let a = weightsAfterTwoSteps(), b = weightsAfterTwoSteps()
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(a == b, "same seed and thread count must give bit-identical weights")
        let other = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 124)
        XCTAssertNotEqual(other.parameters.flatMap(\.value.storage), UNet(config: UNetConfig(inputChannels: 3, baseFilters: 4, depth: 2), seed: 123).parameters.flatMap(\.value.storage))
    }

    /// A tiny U-Net overfits a handful of image/mask pairs: loss falls and Dice passes 0.9.
    func testTinyUNetOverfitsAHandfulOfImages() {
        let size = 32, count = 4
        var rng = SeededGenerator(seed: 77)
        var images = Tensor.zeros([count, size, size, 3]), masks = Tensor.zeros([count, size, size, 1])
        for n in 0..<count {
            let cx = rng.uniform(8, 24), cy = rng.uniform(8, 24), r = rng.uniform(4, 8)
            for i in 0..<size { for j in 0..<size {
                let inside = (Float(i) - cy) * (Float(i) - cy) + (Float(j) - cx) * (Float(j) - cx) < r * r
                masks[n, i, j, 0] = inside ? 1 : 0
                for c in 0..<3 { images[n, i, j, c] = (inside ? 0.7 : 0.3) + 0.1 * rng.uniform(-1, 1) }
            } }
        }
        let model = UNet(config: UNetConfig(inputChannels: 3, baseFilters: 8, depth: 2, bnMomentum: 0.9), seed: 5)
        let adam = Adam(parameters: model.trainableParameters, learningRate: 1e-2)
        var firstLoss: Float = 0, lastLoss: Float = 0
        for step in 0..<120 {
            model.zeroGradients()
            let p = model.forward(images, training: true)
            let (loss, grad) = Loss.bceDice.evaluate(probabilities: p, targets: masks)
            if step == 0 { firstLoss = loss }
            lastLoss = loss
            model.backward(grad)
            adam.update()
        }
        var metrics = SegmentationMetrics()
        metrics.add(probabilities: model.forward(images, training: true), targets: masks)
        print("overfit: loss \(firstLoss) -> \(lastLoss), dice \(metrics.scores.dicePerImage)")
        XCTAssertLessThan(lastLoss, firstLoss * 0.5)
        XCTAssertGreaterThan(metrics.scores.dicePerImage, 0.9)
    }

    func testMetricsPerImageAndPooled() {
        // image 0: truth 4 px, predicted 2 of them + 2 false; image 1: both empty.
        var p = Tensor.zeros([2, 2, 4, 1]), y = Tensor.zeros([2, 2, 4, 1])
        for j in 0..<4 { y[0, 0, j, 0] = 1 }
        p[0, 0, 0, 0] = 0.9; p[0, 0, 1, 0] = 0.6; p[0, 1, 0, 0] = 0.7; p[0, 1, 1, 0] = 0.51; p[0, 0, 2, 0] = 0.5
        var m = SegmentationMetrics()
        m.add(probabilities: p, targets: y)
        let s = m.scores
        XCTAssertEqual(s.dicePooled, 0.5, accuracy: 1e-12)       // 2*2 / (2*2 + 2 + 2)
        XCTAssertEqual(s.iouPooled, 1.0 / 3.0, accuracy: 1e-12)  // 2 / 6
        XCTAssertEqual(s.dicePerImage, 0.75, accuracy: 1e-12)    // (0.5 + 1) / 2
        XCTAssertEqual(s.images, 2)
    }
}
