import Foundation
import XCTest
@testable import Sweep

final class SweepSpecTests: XCTestCase {
    func testPipelineGraph() throws {
        let s = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            compression: {svd_ranks: [50, 100], arsvd_taus: [0.9]}
            seeds: [1, 2]
            baseline: {epochs: 2, batch_size: 4}
            """, file: "s.yaml")
        let jobs = try JobGraph.plan(s) { _, _ in XCTFail("nothing to import"); return ("", 0) }
        XCTAssertEqual(jobs.map(\.id), ["train-s1", "svd-r50-s1", "svd-r100-s1", "arsvd-t0.9-s1", "train-s2", "svd-r50-s2", "svd-r100-s2", "arsvd-t0.9-s2"])
        let c = jobs[1]
        XCTAssertEqual(c.deps, ["train-s1"])
        XCTAssertEqual(c.inputs.first?.fromJob, "train-s1")
        XCTAssertEqual(c.inputs.first?.file, JobFiles.model)
        let spec = try JSONDecoder().decode(CompressJobSpec.self, from: Data(c.spec.utf8))
        XCTAssertEqual(spec.method, "svd")
        XCTAssertEqual(spec.rank, 50)
        XCTAssertEqual(spec.data.synthetic, SyntheticSpec(count: 16, size: 32, seed: 3))
        let t = try JSONDecoder().decode(TrainJobSpec.self, from: Data(jobs[0].spec.utf8))
        XCTAssertEqual(t.training.epochs, 2)
        XCTAssertEqual(t.training.batchSize, 4)
        XCTAssertEqual(t.seed, 1)
    }

    func testErrorsNameKeyAndFile() {
        let cases: [(String, String)] = [
            ("compresion: {}\n", "s.yaml: unknown key compresion"),
            ("compression: {svd_ranks: [50, x]}\n", "compression.svd_ranks"),
            ("compression: {arsvd_taus: [1.5]}\n", "arsvd_taus (line 1) values must be in (0.0, 1.0]"),
            ("baseline: {epochs: 0}\n", "baseline.epochs (line 1) must be at least 1"),
            ("baseline: {lr: fast}\n", "baseline.lr (line 1) must be a number"),
            ("model: {base_filters: 16, dept: 3}\n", "unknown key model.dept"),
            ("seeds: []\n", "seeds (line 1) needs at least one value"),
            ("seeds: {a: 1}\n", "seeds (line 1) must be an integer"),
            ("- a\n- b\n", "the top level must be a mapping"),
            ("noop: [1\n", "not valid YAML"),
            ("data_root: /x\nsynthetic: {count: 2}\n", "give data_root or synthetic"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: yaml, file: "s.yaml"), yaml) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(yaml) -> \(e)")
                XCTAssertTrue("\(e)".contains("s.yaml"), "\(e)")
            }
        }
    }

    func testGridAxesMakeTheProductSharingBaselines() throws {
        let s = try SweepSpec.parse(yaml: """
            synthetic: {count: 16, size: 32, seed: 3}
            model: {base_filters: [4, 8], depth: 2}
            baseline: {epochs: 2, lr: [0.001, 0.003]}
            compression: {svd_ranks: [2], arsvd_taus: []}
            fine_tune: {lr: [0.0001, 0.0002]}
            seeds: 1
            """, file: "s.yaml")
        let jobs = try JobGraph.plan(s) { _, _ in ("", 0) }
        let trains = jobs.filter { $0.kind == "train" }.map(\.id)
        XCTAssertEqual(trains, ["train-bf4-lr0.001-s1", "train-bf4-lr0.003-s1", "train-bf8-lr0.001-s1", "train-bf8-lr0.003-s1"],
                       "one baseline per (base_filters, lr); the fine-tune lr list does not multiply baselines")
        let compress = jobs.filter { $0.kind == "compress" }
        XCTAssertEqual(compress.count, 8)
        XCTAssertEqual(Array(compress.map(\.id).prefix(2)), ["svd-r2-bf4-lr0.001-ftlr0.0001-s1", "svd-r2-bf4-lr0.001-ftlr0.0002-s1"])
        for c in compress {
            let spec = try JSONDecoder().decode(CompressJobSpec.self, from: Data(c.spec.utf8))
            XCTAssertEqual(c.deps, [spec.baselineJob])
            let base = try JSONDecoder().decode(TrainJobSpec.self, from: Data(jobs.first { $0.id == spec.baselineJob }!.spec.utf8))
            XCTAssertEqual(base.model, spec.model, "\(c.id) compresses the baseline of its own model shape")
            XCTAssertTrue(c.id.contains("lr\(base.training.learningRate)-"), c.id)
            XCTAssertTrue(c.id.contains("ftlr\(spec.fineTune.learningRate)-"), c.id)
        }
        // Single values keep today's ids, so existing state dirs stay valid.
        let plain = try JobGraph.plan(try SweepSpec.parse(yaml: "baseline: {lr: [0.001]}\ncompression: {svd_ranks: [2], arsvd_taus: []}\n", file: "s.yaml")) { _, _ in ("", 0) }
        XCTAssertEqual(plain.map(\.id), ["train-s42", "svd-r2-s42"])
    }

    func testAxisErrorsNameKeyAndLine() {
        let cases: [(String, String)] = [
            ("baseline:\n  lr:\n    - 0.001\n    - fast\n", "s.yaml: baseline.lr (line 4) must be a number or a list of them, got \"fast\""),
            ("model:\n  depth: [2, 0]\n", "model.depth (line 2) must be at least 1, got 0"),
            ("fine_tune:\n  epochs: [1, 1]\n", "fine_tune.epochs (line 2) lists 1 twice"),
            ("baseline: {augment: [true, maybe]}\n", "baseline.augment (line 1) must be true or false"),
            ("image_size: [64, 4]\n", "image_size (line 1) must be at least 8"),
            ("baseline: {batch_size: []}\n", "baseline.batch_size (line 1) needs at least one value"),
            ("baseline_model: m.safetensors\nbaseline: {epochs: [1, 2]}\n", "a list at baseline.epochs has nothing to train"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try SweepSpec.parse(yaml: yaml, file: "s.yaml"), yaml) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(yaml) -> \(e)")
            }
        }
    }

    func testFlagLists() throws {
        XCTAssertEqual(try ListFlag.ints("50,100, 150", flag: "--svd-ranks"), [50, 100, 150])
        XCTAssertEqual(try ListFlag.doubles("0.95,0.9", flag: "--arsvd-taus"), [0.95, 0.9])
        XCTAssertThrowsError(try ListFlag.ints("50,abc", flag: "--svd-ranks")) { XCTAssertTrue("\($0)".contains("--svd-ranks")) }
        XCTAssertThrowsError(try ListFlag.doubles("1.2", flag: "--arsvd-taus"))
    }
}

final class ProtocolTests: XCTestCase {
    func testMalformedFramesRejected() {
        let bad: [[[UInt8]]] = [[], [Array("HELLO".utf8)], [Array("WHAT".utf8), Array("{\"v\":1}".utf8)],
                                [Array("READY".utf8), Array("[1]".utf8)], [Array("READY".utf8), Array("{\"v\":99}".utf8)],
                                [Array("READY".utf8), Array("{\"x\":1}".utf8)], [Array("READY".utf8), Array("{\"v\":1".utf8)]]
        for f in bad { XCTAssertThrowsError(try WireMessage.parse(f[...]), "\(f)") }
        XCTAssertNoThrow(try WireMessage.parse([Array("READY".utf8), Array("{\"v\":\(Wire.version)}".utf8)][...]))
    }

    func testFastHeadersMatchCodable() throws {
        let job = WireMessage.job(JobHeader(job: "a\"b\\c\n", attempt: 3, kind: "noop", inputs: []), spec: Array("{}".utf8))
        let parsedJob = try WireMessage.parse(job.frames[...])
        XCTAssertEqual(try parsedJob.decode(JobHeader.self).job, "a\"b\\c\n")
        XCTAssertEqual(try parsedJob.fields.decodeJob().attempt, 3)
        let done = WireMessage.done(DoneHeader(job: "j", attempt: 2, artifacts: ["m": "h"], seconds: 1.5), result: Array("{}".utf8))
        let d = try WireMessage.parse(done.frames[...])
        XCTAssertEqual(try d.decode(DoneHeader.self).artifacts, ["m": "h"])
        XCTAssertEqual(try d.fields.decodeDone().seconds, 1.5)
        let ack = try WireMessage.parse(WireMessage.ack([JobRef(job: "x", attempt: 1), JobRef(job: "y", attempt: 2)]).frames[...])
        XCTAssertEqual(try ack.fields.decodeAck(), [JobRef(job: "x", attempt: 1), JobRef(job: "y", attempt: 2)])
        XCTAssertEqual(try ack.decode(AckHeader.self).jobs.count, 2)
    }

    func testPublishedCurveKeysRefused() throws {
        XCTAssertThrowsError(try CurveKeyPair(secretKey: "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"))
        let k = try CurveKeyPair.generate()
        XCTAssertEqual(try CurveKeyPair(secretKey: k.secretKey).publicKey, k.publicKey)
        XCTAssertThrowsError(try CurveKeyPair.validate("short", what: "key"))
    }

    func testLoopbackDetection() {
        XCTAssertTrue(Endpoint.isLoopback("tcp://127.0.0.1:5555"))
        XCTAssertTrue(Endpoint.isLoopback("tcp://localhost:1"))
        XCTAssertTrue(Endpoint.isLoopback("tcp://[::1]:1"))
        XCTAssertFalse(Endpoint.isLoopback("tcp://0.0.0.0:5555"))
        XCTAssertFalse(Endpoint.isLoopback("tcp://10.77.0.1:5555"))
    }
}

final class ArtifactTests: XCTestCase {
    func testMultiChunkTransferVerifiedAndCorruptionRejected() throws {
        let dir = Harness.tempDir("art")
        let store = try ArtifactStore(dir: dir)
        let bytes = (0 ..< (Wire.chunkSize * 3 + 1234)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let hash = SHA256Hasher.hex(bytes)
        let r = try ArtifactReceiver(store: store, hash: hash, size: Int64(bytes.count))
        var offset = 0, complete = false
        while offset < bytes.count {
            let n = min(Wire.chunkSize, bytes.count - offset)
            complete = try r.accept(offset: Int64(offset), bytes: Array(bytes[offset ..< offset + n]))
            offset += n
        }
        XCTAssertTrue(complete)
        XCTAssertTrue(store.has(hash))
        XCTAssertEqual(store.read(hash, offset: Int64(Wire.chunkSize), length: 10), Array(bytes[Wire.chunkSize ..< Wire.chunkSize + 10]))

        let other = bytes.map { $0 ^ 1 }
        let h2 = SHA256Hasher.hex(other)
        let r2 = try ArtifactReceiver(store: store, hash: h2, size: Int64(other.count))
        offset = 0
        var thrown: Error?
        while offset < other.count {
            let n = min(Wire.chunkSize, other.count - offset)
            var chunk = Array(other[offset ..< offset + n])
            if offset == Wire.chunkSize { chunk[100] ^= 0xff }  // corrupted in the second chunk
            do { _ = try r2.accept(offset: Int64(offset), bytes: chunk) } catch { thrown = error; break }
            offset += n
        }
        XCTAssertTrue("\(thrown.map { "\($0)" } ?? "")".contains("failed verification"))
        XCTAssertFalse(store.has(h2), "a corrupted artifact never enters the store")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp"), [], "no partial file left")
        let r3 = try ArtifactReceiver(store: store, hash: h2, size: Int64(other.count))
        XCTAssertThrowsError(try r3.accept(offset: 5, bytes: [1]), "out-of-order chunk")
    }

    func testDirectoryArchiveDeterministicRoundTrip() throws {
        let dir = Harness.tempDir("arch")
        Harness.write("b", dir + "/src/b/2.txt")
        Harness.write("a", dir + "/src/a.txt")
        Harness.write(String(repeating: "z", count: 300_000), dir + "/src/b/big.bin")
        let one = try DirectoryArchive.pack(directory: dir + "/src", to: dir + "/one")
        let two = try DirectoryArchive.pack(directory: dir + "/src", to: dir + "/two")
        XCTAssertEqual(one.hash, two.hash, "same folder, same bytes")
        try DirectoryArchive.unpack(archive: dir + "/one", to: dir + "/out")
        XCTAssertEqual(try String(contentsOfFile: dir + "/out/b/2.txt", encoding: .utf8), "b")
        XCTAssertEqual(try String(contentsOfFile: dir + "/out/b/big.bin", encoding: .utf8).count, 300_000)
        // A hostile archive with "../" is refused.
        var evil = Array("RSARCHV1".utf8) + DirectoryArchive.le32(6) + Array("../x/y".utf8) + DirectoryArchive.le64(1) + [65] + DirectoryArchive.le32(0)
        FileManager.default.createFile(atPath: dir + "/evil", contents: Data(evil))
        XCTAssertThrowsError(try DirectoryArchive.unpack(archive: dir + "/evil", to: dir + "/evilout"))
        evil.removeLast(6)
        FileManager.default.createFile(atPath: dir + "/trunc", contents: Data(evil))
        XCTAssertThrowsError(try DirectoryArchive.unpack(archive: dir + "/trunc", to: dir + "/truncout"))
    }
}

final class StoreResumeTests: XCTestCase {
    /// Running jobs become queued (their attempt orphaned, not counted as a failure); finished
    /// results stay; a second coordinator on the same dir is refused while the first lives.
    func testResumeSemantics() throws {
        let dir = Harness.tempDir("resume")
        var spec = SweepSpec()
        spec.pipeline = false
        spec.noop = 3
        var o = CoordinatorOptions(bind: "tcp://127.0.0.1:*", stateDir: dir)
        o.sweep = spec
        o.progress = .none
        do {
            _ = try Coordinator(options: o)
            let store = try SweepStore(stateDir: dir)
            try store.apply([.dispatch(JobRef(job: "noop-1", attempt: 1), worker: "w1"),
                             .dispatch(JobRef(job: "noop-2", attempt: 1), worker: "w1"),
                             .done(JobRef(job: "noop-2", attempt: 1), worker: "w1", result: "{\"x\":1}", artifacts: "{}", seconds: 0.1)])
        }
        let c = try Coordinator(options: o)
        XCTAssertEqual(c.jobs.doneCount, 1)
        let store = try SweepStore(stateDir: dir, readOnly: true)
        let jobs = Dictionary(uniqueKeysWithValues: try store.rows("SELECT id, state, attempt, failures FROM jobs").map { ($0["id"]!, $0) })
        XCTAssertEqual(jobs["noop-1"]?["state"], "queued")
        XCTAssertEqual(jobs["noop-1"]?["attempt"], "1", "attempt unchanged; the next dispatch is attempt 2")
        XCTAssertEqual(jobs["noop-1"]?["failures"], "0", "a coordinator restart is not the job's failure")
        XCTAssertEqual(jobs["noop-2"]?["state"], "done")
        XCTAssertEqual(try store.rows("SELECT outcome FROM attempts WHERE job = 'noop-1'").first?["outcome"], "orphaned")
        XCTAssertEqual(try store.rows("SELECT result FROM results").first?["result"], "{\"x\":1}")
        XCTAssertEqual(c.jobs[0].orphaned[1], "w1", "a late result of the orphaned attempt is still accepted, from its worker")
        XCTAssertNil(c.acceptDone(JobRef(job: "noop-1", attempt: 1), worker: "w1", resultJSON: "{}", artifactsJSON: "{}", seconds: 0, now: 1))
        XCTAssertNotNil(c.acceptDone(JobRef(job: "noop-1", attempt: 1), worker: "w2", resultJSON: "{}", artifactsJSON: "{}", seconds: 0, now: 1),
                        "second result for the same job dropped")
        XCTAssertNotNil(c.acceptDone(JobRef(job: "noop-3", attempt: 1), worker: "w1", resultJSON: "{}", artifactsJSON: "{}", seconds: 0, now: 1),
                        "never dispatched attempt dropped")

        // While it lives, the state dir is locked: a second coordinator (or `retry`) is refused, naming it.
        XCTAssertThrowsError(try Coordinator(options: o)) {
            XCTAssertTrue("\($0)".contains("is in use by a running coordinator (pid \(getpid()))"), "\($0)")
        }
    }
}
