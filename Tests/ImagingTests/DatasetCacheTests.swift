import Basics
import Engine
import Foundation
import XCTest
@testable import Imaging

/// The per-host dataset cache: built once under a lock, verified on open, keyed by content and
/// every preprocessing option, read through a mapping.
final class DatasetCacheTests: XCTestCase {
    var dir = ""
    var data: String { dir + "/data" }
    var cache: String { dir + "/cache" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-cache-\(UUID())").path
        try SyntheticDataset.write(to: data, count: 12, size: 16, seed: 5)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func samples(_ d: LoadedDataset) -> [SegmentationSample] { d.train + d.val + d.test }

    func cacheFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []).filter { $0.hasSuffix(".rsds") }.sorted()
    }

    func testTheCacheGivesWhatDecodingGivesAndIsReused() throws {
        let decoded = try DatasetLoader.load(root: data, size: 16, channels: 3)
        let first = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        XCTAssertEqual(first.outcome, .built(reason: "no cache file yet"))
        XCTAssertEqual(samples(first.dataset), samples(decoded))
        XCTAssertEqual(first.dataset.warnings, decoded.warnings)
        let second = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        XCTAssertEqual(second.outcome, .opened)
        XCTAssertEqual(second.path, first.path)
        XCTAssertEqual(samples(second.dataset), samples(decoded))
        XCTAssertEqual(second.dataset.train.map(\.name), decoded.train.map(\.name))
        XCTAssertEqual(cacheFiles().count, 1)
        // The samples view the mapped file: bytes, not floats, and nothing copied per sample.
        guard case .bytes(_, let region, _) = second.dataset.train[0].imagePixels else { return XCTFail("not compact") }
        XCTAssertGreaterThanOrEqual(region.count, 12 * 16 * 16 * 4)
    }

    /// Dropping mapped pages from the resident set loses nothing: they read back the same, and a
    /// heap plane's evict is a no-op.
    func testEvictedPagesReadBackTheSame() throws {
        let loaded = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache).dataset
        let before = samples(loaded).map { ($0.image, $0.mask) }
        for s in samples(loaded) { s.imagePixels.evict(); s.maskPixels.evict() }
        XCTAssertTrue(zip(samples(loaded), before).allSatisfy { $0.image == $1.0 && $0.mask == $1.1 })
        let heap = SamplePixels(Tensor(shape: [64, 64, 1], storage: (0..<4096).map { Float($0 % 256) / 255 }))
        let copy = heap.tensor
        heap.evict()
        XCTAssertEqual(heap.tensor, copy)
    }

    /// Two jobs starting together: one decodes and writes, the other waits and maps its file.
    func testConcurrentBuildersBuildOnce() throws {
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var list: [DatasetCache.Outcome] = []
            var failures: [String] = []
        }
        let outcomes = Outcomes()
        let (data, cache) = (self.data, self.cache)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let r = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
                outcomes.lock.lock(); outcomes.list.append(r.outcome); outcomes.lock.unlock()
            } catch {
                outcomes.lock.lock(); outcomes.failures.append("\(error)"); outcomes.lock.unlock()
            }
        }
        XCTAssertEqual(outcomes.failures, [])
        XCTAssertEqual(outcomes.list.filter { $0 != .opened }.count, 1, "\(outcomes.list)")
        XCTAssertEqual(outcomes.list.count, 4)
        XCTAssertEqual(cacheFiles().count, 1)
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: cache)).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    /// A flipped byte, a truncated file or another dataset's file at the path is never used: it is
    /// rebuilt, and the result is what decoding gives.
    func testACorruptOrForeignCacheIsRebuiltNotUsed() throws {
        let decoded = try DatasetLoader.load(root: data, size: 16, channels: 3)
        let path = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache).path
        let good = try Data(contentsOf: URL(fileURLWithPath: path))

        var corrupt = good
        corrupt[corrupt.count - 100] ^= 0x01   // one pixel of the last sample
        try corrupt.write(to: URL(fileURLWithPath: path))
        let r1 = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        guard case .built(let why) = r1.outcome else { return XCTFail("a corrupt cache was used") }
        XCTAssertTrue(why.contains("corrupt"), why)
        XCTAssertEqual(samples(r1.dataset), samples(decoded))

        try good.prefix(good.count - 4096).write(to: URL(fileURLWithPath: path))
        let r2 = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        guard case .built(let why2) = r2.outcome else { return XCTFail("a truncated cache was used") }
        XCTAssertTrue(why2.contains("truncated"), why2)
        XCTAssertEqual(samples(r2.dataset), samples(decoded))

        // Another dataset's valid cache file put at this path.
        let other = dir + "/other"
        try SyntheticDataset.write(to: other, count: 12, size: 16, seed: 6)
        let otherPath = try DatasetCache.load(root: other, size: 16, channels: 3, directory: dir + "/cache2").path
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: otherPath, toPath: path)
        let r3 = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        guard case .built(let why3) = r3.outcome else { return XCTFail("a foreign cache was used") }
        XCTAssertTrue(why3.contains("other data"), why3)
        XCTAssertEqual(samples(r3.dataset), samples(decoded))

        try Data("not a cache".utf8).write(to: URL(fileURLWithPath: path))
        guard case .built = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache).outcome else {
            return XCTFail("garbage was used")
        }
    }

    /// Any preprocessing option or content change is another cache file, never the old one.
    func testOptionOrContentChangesDoNotReuseTheCache() throws {
        let base = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        var options = DatasetOptions()
        options.maskThreshold = 200
        let threshold = try DatasetCache.load(root: data, size: 16, channels: 3, options: options, directory: cache)
        XCTAssertNotEqual(threshold.path, base.path)
        XCTAssertEqual(threshold.outcome, .built(reason: "no cache file yet"))
        let gray = try DatasetCache.load(root: data, size: 16, channels: 1, directory: cache)
        XCTAssertNotEqual(gray.path, base.path)
        XCTAssertEqual(gray.dataset.train[0].image.shape, [16, 16, 1])
        let smaller = try DatasetCache.load(root: data, size: 8, channels: 3, directory: cache)
        XCTAssertEqual(smaller.dataset.train[0].image.shape, [8, 8, 3])
        let split = try DatasetCache.load(root: data, size: 16, channels: 3, seed: 7, directory: cache)
        XCTAssertNotEqual(split.path, base.path)
        XCTAssertEqual(cacheFiles().count, 5)

        // Same names, other pixels: the content hash changes the key.
        let file = data + "/images/" + base.dataset.train[0].name + ".png"
        var image = try PNGCodec.read(path: file)
        image.storage[0] = image.storage[0] > 0.5 ? 0 : 1
        try PNGCodec.write(image, to: file)
        let changed = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache)
        XCTAssertNotEqual(changed.path, base.path)
        XCTAssertEqual(changed.outcome, .built(reason: "no cache file yet"))
        XCTAssertEqual(changed.dataset.train[0].image.storage[0], image.storage[0])
    }

    func testTheCacheFolderComesFromTheEnvironment() throws {
        XCTAssertNil(try DatasetCache.directory(environment: ["RANKSWEEP_DATASET_CACHE": "off"]))
        XCTAssertEqual(try DatasetCache.directory(environment: ["RANKSWEEP_DATASET_CACHE": "/x/y"]), "/x/y")
        XCTAssertEqual(try DatasetCache.directory(environment: ["XDG_CACHE_HOME": "/c"]), "/c/ranksweep/datasets")
        XCTAssertThrowsError(try DatasetCache.directory(environment: ["RANKSWEEP_DATASET_CACHE": "relative"])) { error in
            XCTAssertTrue("\(error)".contains("RANKSWEEP_DATASET_CACHE"))
        }
    }

    /// Beyond the size bound the least recently used files go; the one just built stays.
    func testPruneKeepsTheNewestWithinTheBound() throws {
        let a = try DatasetCache.load(root: data, size: 16, channels: 3, directory: cache).path
        let b = try DatasetCache.load(root: data, size: 8, channels: 3, directory: cache).path
        let old = timespec(tv_sec: 1_000_000, tv_nsec: 0)
        var times = [old, old]
        _ = utimensat(AT_FDCWD, a, &times, 0)
        DatasetCache.prune(cache, keeping: b, maxBytes: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: a))
        XCTAssertTrue(FileManager.default.fileExists(atPath: b))
    }
}
