import Basics
import Engine
import Imaging

/// Where a job's images come from: a dataset folder (any layout `DatasetLoader` knows), or the built-in synthetic set.
public struct DataSource: Codable, Sendable, Equatable {
    /// A dataset folder; nil = synthetic.
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

    /// Loads and validates every file before anything trains; resizes to `imageSize`. Through the
    /// host's dataset cache (`DatasetCache`, `RANKSWEEP_DATASET_CACHE`) unless that is `off`.
    public func load(imageSize: Int, channels: Int) throws -> LoadedDataset {
        let folder = try root ?? SyntheticDataset.cachedDefault(count: syntheticCount, size: imageSize, seed: syntheticSeed)
        let fractions = SplitFractions(train: 1 - validationFraction - testFraction, val: validationFraction, test: testFraction)
        let options = datasetOptions ?? DatasetOptions()
        if let cache = try DatasetCache.directory() {
            return try DatasetCache.load(root: folder, size: imageSize, channels: channels, fractions: fractions, seed: splitSeed,
                                         options: options, directory: cache).dataset
        }
        return try DatasetLoader.load(root: folder, size: imageSize, channels: channels, fractions: fractions, seed: splitSeed,
                                      options: options)
    }
}

extension DataSource {
    /// The channels the images themselves have: 1 when every image is gray (with or without
    /// alpha), else 3. The synthetic set is colour. Reads file headers only.
    public func storedChannels() throws -> Int {
        guard let root else { return 3 }
        let index = try DatasetLoader.scan(root: root, seed: splitSeed, options: datasetOptions ?? DatasetOptions())
        return try DatasetLoader.colourKind(index: index) == .gray ? 1 : 3
    }
}

/// Assembles NHWC batches from samples.
public enum Batching {
    /// Images `(n, s, s, c)` and masks `(n, s, s, 1)` of `samples[indices]`, converted from the
    /// samples' compact storage straight into the batch (one pass, no per-sample tensor).
    public static func batch(_ samples: [SegmentationSample], _ indices: some Collection<Int>) -> (images: Tensor, masks: Tensor) {
        precondition(!indices.isEmpty, "Batching.batch: no indices")
        let first = samples[indices.first!]
        let imageShape = first.imagePixels.shape, maskShape = first.maskPixels.shape
        let imageCount = first.imagePixels.count, maskCount = first.maskPixels.count
        var images = Tensor.uninitialized([indices.count] + imageShape)
        var masks = Tensor.uninitialized([indices.count] + maskShape)
        images.storage.withUnsafeMutableBufferPointer { x in
            masks.storage.withUnsafeMutableBufferPointer { y in
                for (slot, i) in indices.enumerated() {
                    let sample = samples[i]
                    precondition(sample.imagePixels.shape == imageShape && sample.maskPixels.shape == maskShape,
                                 "Batching.batch: sample \(sample.name) is \(sample.imagePixels.shape), the batch's first is \(imageShape)")
                    sample.imagePixels.write(into: x.baseAddress! + slot * imageCount)
                    sample.maskPixels.write(into: y.baseAddress! + slot * maskCount)
                    // A mapped dataset's pages stay in the page cache, not in this job's RSS.
                    sample.imagePixels.evict()
                    sample.maskPixels.evict()
                }
            }
        }
        return (images, masks)
    }

    /// Consecutive index ranges of at most `size` covering `0..<count`.
    public static func ranges(count: Int, size: Int) -> [Range<Int>] {
        precondition(size > 0, "Batching.ranges: batch size must be positive")
        return stride(from: 0, to: count, by: size).map { $0..<min(count, $0 + size) }
    }
}
