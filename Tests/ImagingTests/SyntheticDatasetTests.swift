import Engine
import Foundation
import XCTest
@testable import Imaging

final class SyntheticDatasetTests: XCTestCase {
    func testSameSeedSamePixelsDifferentSeedDiffers() {
        let a = SyntheticDataset.generate(count: 6, size: 32, seed: 7)
        let b = SyntheticDataset.generate(count: 6, size: 32, seed: 7)
        XCTAssertEqual(a, b)
        let c = SyntheticDataset.generate(count: 6, size: 32, seed: 8)
        XCTAssertNotEqual(a[0].image, c[0].image)
        // Image i does not depend on how many are generated.
        XCTAssertEqual(SyntheticDataset.generate(count: 3, size: 32, seed: 7)[2], a[2])
        XCTAssertEqual(a.map(\.name), ["0000", "0001", "0002", "0003", "0004", "0005"])
    }

    /// Masks are binary, some empty, foreground a sensible fraction; lesions are visibly different
    /// from tissue, yet no single brightness threshold segments them well.
    func testMaskStatisticsAndDifficulty() {
        let samples = SyntheticDataset.generate(count: 80, size: 64, seed: 42)
        XCTAssertTrue(samples.allSatisfy { $0.image.shape == [64, 64, 3] && $0.mask.shape == [64, 64, 1] })
        XCTAssertTrue(samples.allSatisfy { $0.mask.storage.allSatisfy { $0 == 0 || $0 == 1 } })
        XCTAssertTrue(samples.allSatisfy { $0.image.storage.allSatisfy { $0 >= 0 && $0 <= 1 } })
        let empty = samples.filter { $0.foregroundFraction == 0 }.count
        XCTAssertGreaterThanOrEqual(empty, 2)
        XCTAssertLessThanOrEqual(empty, 20)
        let meanForeground = samples.map(\.foregroundFraction).reduce(0, +) / Double(samples.count)
        XCTAssertGreaterThan(meanForeground, 0.05)
        XCTAssertLessThan(meanForeground, 0.40)

        // Luminance inside vs outside the lesions, pooled over the set.
        var inside: [Float] = [], outside: [Float] = []
        for s in samples {
            let gray = PNGCodec.convert(s.image, toChannels: 1)
            for p in 0..<gray.count { (s.mask.storage[p] == 1 ? { inside.append(gray.storage[p]) } : { outside.append(gray.storage[p]) })() }
        }
        let meanIn = inside.reduce(0, +) / Float(inside.count), meanOut = outside.reduce(0, +) / Float(outside.count)
        XCTAssertGreaterThan(meanOut - meanIn, 0.1, "lesions should be clearly darker on average")
        // Best global threshold (dark = lesion) over the whole set.
        var bestDice: Float = 0
        for step in 1..<100 {
            let t = Float(step) / 100
            let tp = Float(inside.filter { $0 < t }.count), fp = Float(outside.filter { $0 < t }.count)
            let fn = Float(inside.count) - tp
            bestDice = max(bestDice, 2 * tp / max(1, 2 * tp + fp + fn))
        }
        print("synthetic: mean foreground \(meanForeground), empty \(empty)/80, lesion lum \(meanIn) vs tissue \(meanOut), best threshold Dice \(bestDice)")
        XCTAssertLessThan(bestDice, 0.8, "a single threshold should not solve the task")
    }

    func testGrayVariant() {
        let rgb = SyntheticDataset.generate(count: 2, size: 16, seed: 3)
        let gray = SyntheticDataset.generate(count: 2, size: 16, seed: 3, channels: 1)
        XCTAssertEqual(gray[1].image.shape, [16, 16, 1])
        XCTAssertEqual(gray[1].image, PNGCodec.convert(rgb[1].image, toChannels: 1))
        XCTAssertEqual(gray[1].mask, rgb[1].mask)
    }

    func testWriteIsLoadableAndRefusesNonEmptyFolder() throws {
        let parent = makeTemporaryDirectory("synth")
        defer { removeDirectory(parent) }
        let dir = parent + "/set"
        let result = try SyntheticDataset.write(to: dir, count: 5, size: 16, seed: 11)
        XCTAssertEqual(result.pairs.map(\.image), (0..<5).map { "images/000\($0).png" })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["set"])   // no temporary left
        let data = try DatasetLoader.load(root: dir, size: 16)
        XCTAssertEqual(data.warnings, [])
        let generated = SyntheticDataset.generate(count: 5, size: 16, seed: 11)
        let loaded = (data.train + data.val + data.test).sorted { $0.name < $1.name }
        XCTAssertEqual(loaded.map(\.mask), generated.map(\.mask))
        // Images are quantised to 8 bits on disk.
        XCTAssertLessThanOrEqual(loaded[0].image.maxAbsDifference(generated[0].image), 0.5 / 255 + 1e-6)

        XCTAssertEqual(thrownDescription { try SyntheticDataset.write(to: dir, count: 5, size: 16, seed: 11) },
                       "\(dir): folder exists and is not empty; choose another or remove it")
        // An existing empty folder is fine.
        try FileManager.default.createDirectory(atPath: parent + "/empty", withIntermediateDirectories: false)
        XCTAssertNoThrow(try SyntheticDataset.write(to: parent + "/empty", count: 3, size: 16, seed: 1, channels: 1))
        XCTAssertEqual(try PNGCodec.info(path: parent + "/empty/images/0000.png").channels, 1)
    }

    func testCachedDefaultGeneratesOnceUnderXDGCache() throws {
        let cache = makeTemporaryDirectory("cache")
        defer { removeDirectory(cache) }
        setenv("XDG_CACHE_HOME", cache, 1)
        defer { unsetenv("XDG_CACHE_HOME") }
        let dir = try SyntheticDataset.cachedDefault(count: 4, size: 16, seed: 5)
        XCTAssertTrue(dir.hasPrefix(cache + "/ranksweep/synth-v"), dir)
        let stamp = try FileManager.default.attributesOfItem(atPath: dir + "/images/0000.png")[.modificationDate] as? Date
        XCTAssertEqual(try SyntheticDataset.cachedDefault(count: 4, size: 16, seed: 5), dir)
        let again = try FileManager.default.attributesOfItem(atPath: dir + "/images/0000.png")[.modificationDate] as? Date
        XCTAssertEqual(stamp, again)
        XCTAssertEqual(try DatasetLoader.files(root: dir).count, 8)
    }
}
