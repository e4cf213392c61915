import Engine

/// What `ModelCompressor.compress` did to a model: totals and every layer's decision.
public struct CompressionSummary: Codable, Sendable, Equatable {
    public var method: CompressionMethod
    /// The image size FLOPs are counted at (the model's training size).
    public var imageHeight: Int
    public var imageWidth: Int
    /// All weights, BatchNorm moving statistics included (as Keras's "total params").
    public var parametersBefore: Int
    public var parametersAfter: Int
    public var trainableParametersBefore: Int
    public var trainableParametersAfter: Int
    /// `100 * (before - after) / before` of the total parameter count.
    public var parameterReductionPercent: Double
    /// Forward FLOPs per image (2 x multiply-adds of convolutions and transposed convolutions).
    public var flopsBefore: Int
    public var flopsAfter: Int
    public var flopReductionPercent: Double
    public var factorisedLayerCount: Int
    /// The latency profile that gated the pairs (nil: none; then the result depends only on the
    /// model and the method). Where it was measured, for the report.
    public var latencyProfile: LatencyProfileRef?
    /// One per convolution slot, forward order, head last.
    public var layers: [LayerDecision]
    /// Wall time of all the SVDs (seconds), for comparison with other tools.
    public var decompositionSeconds: Double
}

/// Compresses a U-Net by factorising its convolutions (the README's "ranksweep compress" section).
public enum ModelCompressor {
    /// Knobs the public entry point fixes; tests change them.
    struct Options {
        /// Keep a layer full when its rank would not save parameters. Off only to check that a
        /// model factorised everywhere at full rank reproduces the original.
        var enforceBreakEven = true
        var svdStrategy = SVD.Strategy.divideAndConquerWithFallback
        /// Keep a layer full unless its pair is faster in this profile (measured beforehand on the
        /// deployment target by `LatencyProfiler`; never measured here).
        var latencyProfile: LatencyProfile?
    }

    /// A compressed copy of `model` (the input is not modified) and what was done.
    ///
    /// Every 3x3 convolution is decomposed; the method picks its rank; the layer is factorised
    /// unless the pair would not have fewer weights (`rank >= break-even`). The output head and
    /// slots that are already factorised stay as they are. FLOPs are counted for images of
    /// `imageSize x imageSize`, which must be a multiple of `2^depth`. With a `latencyProfile`, a
    /// pair is used only when the profile says it is faster than its full layer: the decision then
    /// depends on that file (the same on every host), never on this machine's clock.
    public static func compress(model: UNet, method: CompressionMethod, imageSize: Int,
                                latencyProfile: LatencyProfile? = nil) throws(CompressionError) -> (model: UNet, summary: CompressionSummary) {
        try compress(model: model, method: method, imageSize: imageSize, options: Options(latencyProfile: latencyProfile))
    }

    static func compress(model: UNet, method planOrMethod: CompressionMethod, imageSize: Int,
                         options: Options) throws(CompressionError) -> (model: UNet, summary: CompressionSummary) {
        try planOrMethod.validate()
        if case .allocated(let plan) = planOrMethod {
            let names = Set(model.convolutions.map(\.name))
            if let unknown = plan.entries.first(where: { !names.contains($0.layer) }) {
                throw CompressionError("plan \(plan.label) names layer \(unknown.layer), which this model does not have")
            }
        }
        let multiple = 1 << model.config.depth
        guard imageSize > 0 && imageSize % multiple == 0 else {
            throw CompressionError("image size \(imageSize) must be a positive multiple of \(multiple) for a depth-\(model.config.depth) U-Net")
        }
        let compressed = copy(of: model)
        let clock = ContinuousClock()
        var decompositionTime = Duration.zero
        var decisions: [LayerDecision] = []
        for slot in convolutionSlots(of: compressed, imageSize: imageSize) {
            let conv = slot.layer
            let (h, w) = (slot.size, slot.size)
            let rows = conv.kernelHeight * conv.kernelWidth * conv.inChannels
            var decision = LayerDecision(
                name: conv.name, kernelShape: [conv.kernelHeight, conv.kernelWidth, conv.inChannels, conv.outChannels],
                fullRank: min(rows, conv.outChannels), numericalRank: nil,
                breakEvenRank: Factorisation.breakEvenRank(rows: rows, columns: conv.outChannels),
                chosenRank: nil, rank: nil, energyKept: 1, energyAtChosenRank: nil,
                parametersBefore: conv.parameterCount, parametersAfter: conv.parameterCount,
                flopsBefore: conv.flops(height: h, width: w), flopsAfter: conv.flops(height: h, width: w),
                factorised: false, skipReason: nil, singularValues: [])
            guard let full = conv as? Conv2D else {
                if let pair = conv as? LowRankConv2D {
                    decision.rank = pair.rank
                    decision.skipReason = .alreadyFactorised(rank: pair.rank)
                } else if let pair = conv as? SpatialSVDConv2D {
                    decision.rank = pair.rank
                    decision.skipReason = .alreadyFactorised(rank: pair.rank)
                } else if let tucker = conv as? Tucker2Conv2D {
                    decision.rank = tucker.inputRank
                    decision.outputRank = tucker.outputRank
                    decision.skipReason = .alreadyFactorised(rank: tucker.inputRank)
                } else {
                    decision.skipReason = .unsupportedLayer(type: String(describing: type(of: conv)))
                }
                decisions.append(decision)
                continue
            }
            // A plan gives each layer its own method; a layer it does not list stays full.
            let method: CompressionMethod
            if case .allocated(let plan) = planOrMethod {
                guard let own = plan.method(forLayer: conv.name), !slot.isHead else {
                    decision.skipReason = slot.isHead ? .outputHead : .keptFullByPlan
                    decisions.append(decision)
                    continue
                }
                method = own
            } else {
                method = planOrMethod
            }
            let start = clock.now
            // svd: the matrix the method's rank is read from (spatial SVD's own; the others the
            // (kh*kw*cin) x cout one, Tucker-2's output-channel mode); inputSVD: Tucker-2's input-channel mode.
            let svd: SingularValueDecomposition
            var inputSVD: SingularValueDecomposition?
            do {
                if case .spatialSVD = method {
                    svd = try Factorisation.decomposeSpatially(full)
                } else {
                    svd = try Factorisation.decompose(full, strategy: options.svdStrategy)
                }
                if case .tucker2 = method, !slot.isHead { inputSVD = try Factorisation.decomposeInputChannels(full) }
            } catch {
                throw CompressionError("cannot compress: \(error.reason)")
            }
            decompositionTime += clock.now - start
            decision.singularValues = svd.singularValues
            decision.numericalRank = svd.numericalRank
            if slot.isHead {
                decision.skipReason = .outputHead
                decisions.append(decision)
                continue
            }
            let fullWeights = rows * full.outChannels
            let pair: any ConvolutionLayer
            let rank: Int
            let energyKept: Double
            switch method {
            case .svd, .arsvd:
                rank = method.rank(for: svd)
                decision.chosenRank = rank
                decision.energyAtChosenRank = svd.energyFraction(rank: rank)
                if options.enforceBreakEven && !Factorisation.savesParameters(rank: rank, rows: rows, columns: full.outChannels) {
                    decision.skipReason = .pastBreakEven(rank: rank, breakEven: decision.breakEvenRank)
                    decisions.append(decision)
                    continue
                }
                pair = Factorisation.factorise(full, rank: rank, svd: svd, workspace: compressed.workspace)
                energyKept = svd.energyFraction(rank: rank)
            case .tucker2(let rule):
                guard let inputSVD else { preconditionFailure("Tucker-2 without its input-channel decomposition") }
                let area = full.kernelHeight * full.kernelWidth
                rank = rule.rank(for: inputSVD, channels: full.inChannels)
                let r2 = rule.rank(for: svd, channels: full.outChannels)
                decision.fullRank = min(inputSVD.k, svd.k)
                decision.breakEvenRank = Factorisation.tucker2BreakEvenRank(kernelArea: area, inChannels: full.inChannels, outChannels: full.outChannels)
                decision.chosenRank = rank
                decision.chosenOutputRank = r2
                let tucker = Factorisation.tucker2(full, inputRank: rank, outputRank: r2, inputSVD: inputSVD, outputSVD: svd,
                                                   workspace: compressed.workspace)
                decision.energyAtChosenRank = tucker.energyKept
                let weights = Factorisation.tucker2Weights(kernelArea: area, inChannels: full.inChannels, outChannels: full.outChannels,
                                                           inputRank: rank, outputRank: r2)
                if options.enforceBreakEven && weights >= fullWeights {
                    decision.skipReason = .pastBreakEven(rank: max(rank, r2), breakEven: decision.breakEvenRank)
                    decisions.append(decision)
                    continue
                }
                pair = tucker.layer
                energyKept = tucker.energyKept
                decision.outputRank = r2
            case .allocated:
                preconditionFailure("LayerPlan.validate lets no plan inside a plan")
            case .spatialSVD(let rule):
                rank = rule.rank(for: svd, channels: full.outChannels)
                decision.fullRank = svd.k
                decision.breakEvenRank = Factorisation.spatialSVDBreakEvenRank(full)
                decision.chosenRank = rank
                decision.energyAtChosenRank = svd.energyFraction(rank: rank)
                if options.enforceBreakEven && !Factorisation.spatialSVDSavesParameters(rank: rank, full) {
                    decision.skipReason = .pastBreakEven(rank: rank, breakEven: decision.breakEvenRank)
                    decisions.append(decision)
                    continue
                }
                pair = Factorisation.spatialSVD(full, rank: rank, svd: svd, workspace: compressed.workspace)
                energyKept = svd.energyFraction(rank: rank)
            }
            if let profile = options.latencyProfile {
                // Tucker-2 is profiled at r1 = r2 and looked up at the mean of its two ranks.
                let lookup = decision.chosenOutputRank.map { (rank + $0 + 1) / 2 } ?? rank
                let (fullMs, factorisedMs) = try profile.times(for: full, inputSize: slot.size, family: method.pairFamily, rank: lookup)
                decision.measuredFullMs = fullMs
                decision.measuredFactorisedMs = factorisedMs
                if !(factorisedMs < fullMs) {
                    decision.skipReason = .slowerThanFull(fullMs: fullMs, factorisedMs: factorisedMs)
                    decision.outputRank = nil
                    decisions.append(decision)
                    continue
                }
            }
            compressed.replaceConvolution(named: full.name, with: pair)
            decision.rank = rank
            decision.factorised = true
            decision.energyKept = energyKept
            decision.parametersAfter = pair.parameterCount
            decision.flopsAfter = pair.flops(height: h, width: w)
            decisions.append(decision)
        }
        let before = (params: model.parameterCount, trainable: model.trainableParameterCount,
                      flops: model.flopsPerImage(height: imageSize, width: imageSize))
        let after = (params: compressed.parameterCount, trainable: compressed.trainableParameterCount,
                     flops: compressed.flopsPerImage(height: imageSize, width: imageSize))
        let seconds = Double(decompositionTime.components.seconds) + Double(decompositionTime.components.attoseconds) * 1e-18
        let summary = CompressionSummary(
            method: planOrMethod, imageHeight: imageSize, imageWidth: imageSize,
            parametersBefore: before.params, parametersAfter: after.params,
            trainableParametersBefore: before.trainable, trainableParametersAfter: after.trainable,
            parameterReductionPercent: percentReduction(before.params, after.params),
            flopsBefore: before.flops, flopsAfter: after.flops,
            flopReductionPercent: percentReduction(before.flops, after.flops),
            factorisedLayerCount: decisions.filter(\.factorised).count, latencyProfile: options.latencyProfile.map(LatencyProfileRef.init),
            layers: decisions, decompositionSeconds: seconds)
        return (compressed, summary)
    }

    /// An independent copy of `model`: same architecture, weights, factorised slots and BatchNorm
    /// momenta, its own workspace. Tensors are values, so training the copy leaves `model` alone.
    public static func copy(of model: UNet) -> UNet {
        let copy = UNet(config: model.config, seed: 0, workspace: Workspace(capacityFloats: model.workspace.capacityFloats, minimumRows: model.workspace.minimumRows))
        do {
            try copy.assign(model.stateDictionary, path: "(in-memory copy)")
        } catch {
            preconditionFailure("ModelCompressor.copy: a model's own tensors do not fit its architecture: \(error)")
        }
        for (source, target) in zip(model.batchNorms, copy.batchNorms) { target.momentum = source.momentum }
        return copy
    }

    typealias Slot = (layer: any ConvolutionLayer, size: Int, isHead: Bool, norm: BatchNorm?)

    /// Each convolution slot with the side of the feature map it runs on (square images) and the
    /// BatchNorm that inference folds into it (none for the head).
    static func convolutionSlots(of model: UNet, imageSize: Int) -> [Slot] {
        var slots: [Slot] = []
        func add(_ block: ConvBlock, _ size: Int) {
            slots += [(block.conv1, size, false, block.bn1), (block.conv2, size, false, block.bn2)]
        }
        for (level, block) in model.encoders.enumerated() { add(block, imageSize >> level) }
        add(model.bottleneck, imageSize >> model.config.depth)
        for level in stride(from: model.config.depth - 1, through: 0, by: -1) { add(model.decoders[level], imageSize >> level) }
        slots.append((model.head, imageSize, true, nil))
        precondition(slots.map(\.layer.name) == model.convolutions.map(\.name),
                     "ModelCompressor: convolution slots out of step with UNet.convolutions")
        return slots
    }

    static func percentReduction(_ before: Int, _ after: Int) -> Double {
        before == 0 ? 0 : 100 * Double(before - after) / Double(before)
    }
}
