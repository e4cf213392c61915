import Engine
import Imaging

/// Where a job's images come from: a folder of PNGs, or the built-in synthetic set.
public struct DataSource: Codable, Sendable, Equatable {
    /// A folder in the layout `images/` + `masks/` (or `train|val|test/{images,masks}`); nil = synthetic.
    public var root: String?
    /// Synthetic set size, generated once into the cache and reused (ignored when `root` is set).
    public var syntheticCount: Int
    public var syntheticSeed: UInt64
    /// Seed of the train/val/test split (when the folder is not already split).
    public var splitSeed: UInt64
    /// Fractions held out for validation and test (when the folder is not already split).
    public var validationFraction: Double
    public var testFraction: Double
    /// How the folder's images and masks are found and binarised (nil: the defaults); travels in
    /// job specs so every worker reads the data the same way.
    public var datasetOptions: DatasetOptions?

    public init(root: String? = nil, syntheticCount: Int = 200, syntheticSeed: UInt64 = 1, splitSeed: UInt64 = 42,
                validationFraction: Double = 0.1, testFraction: Double = 0.1) {
        self.root = root
        self.syntheticCount = syntheticCount
        self.syntheticSeed = syntheticSeed
        self.splitSeed = splitSeed
        self.validationFraction = validationFraction
        self.testFraction = testFraction
    }

    public var description: String {
        root.map { "folder \($0)" } ?? "synthetic set (\(syntheticCount) images, seed \(syntheticSeed))"
    }

    /// Loads and validates every file before anything trains; resizes to `imageSize`.
    public func load(imageSize: Int, channels: Int) throws -> LoadedDataset {
        let folder = try root ?? SyntheticDataset.cachedDefault(count: syntheticCount, size: imageSize, seed: syntheticSeed)
        let fractions = SplitFractions(train: 1 - validationFraction - testFraction, val: validationFraction, test: testFraction)
        return try DatasetLoader.load(root: folder, size: imageSize, channels: channels, fractions: fractions, seed: splitSeed,
                                      options: datasetOptions ?? DatasetOptions())
    }
}

extension DataSource {
    /// For data brought to an existing model: the folder's images must have the model's channels
    /// (gray for 1, colour for 3). Training converts on purpose (`--channels`); reusing a model on
    /// data of the other kind is almost always a mistake, so it is an error naming a file.
    public func checkChannels(matching model: Int) throws {
        guard let root else { return }
        let index = try DatasetLoader.scan(root: root, options: datasetOptions ?? DatasetOptions())
        guard let first = (index.train + index.val + index.test).first else { return }
        let path = index.root + "/" + first.image
        let stored = try ImageDecoder.info(path: path).channels
        let colour = stored >= 3 ? 3 : 1
        if colour != model {
            throw DataChannelsError(description: "\(path): images are \(colour == 3 ? "colour (RGB)" : "gray") but the model takes \(model) channel\(model == 1 ? "" : "s") (\(model == 3 ? "RGB" : "gray"))")
        }
    }
}

public struct DataChannelsError: Error, CustomStringConvertible {
    public let description: String
}

/// Assembles NHWC batches from samples.
public enum Batching {
    /// Images `(n, s, s, c)` and masks `(n, s, s, 1)` of `samples[indices]`.
    public static func batch(_ samples: [SegmentationSample], _ indices: some Collection<Int>) -> (images: Tensor, masks: Tensor) {
        precondition(!indices.isEmpty, "Batching.batch: no indices")
        let first = samples[indices.first!]
        let imageCount = first.image.count, maskCount = first.mask.count
        var images = [Float](), masks = [Float]()
        images.reserveCapacity(imageCount * indices.count)
        masks.reserveCapacity(maskCount * indices.count)
        for i in indices {
            images.append(contentsOf: samples[i].image.storage)
            masks.append(contentsOf: samples[i].mask.storage)
        }
        return (Tensor(shape: [indices.count] + first.image.shape, storage: images),
                Tensor(shape: [indices.count] + first.mask.shape, storage: masks))
    }

    /// Consecutive index ranges of at most `size` covering `0..<count`.
    public static func ranges(count: Int, size: Int) -> [Range<Int>] {
        precondition(size > 0, "Batching.ranges: batch size must be positive")
        return stride(from: 0, to: count, by: size).map { $0..<min(count, $0 + size) }
    }
}
