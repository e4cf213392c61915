import Basics
import Foundation

/// A download in progress (zguide fileio3): up to `Wire.chunkCredit` GETs outstanding.
final class Fetch {
    let hash: String
    let size: Int64
    var receiver: ArtifactReceiver?
    var nextOffset: Int64 = 0
    var inFlight = 0
    var failures = 0
    /// After a bad chunk: ignore chunks still in flight, then start over.
    var restarting = false
    init(hash: String, size: Int64) { self.hash = hash; self.size = size }
}

/// An upload in progress: up to `Wire.chunkCredit` PUTs not yet acknowledged.
final class Upload {
    let output: JobOutput
    var refs: Set<JobRef>
    var handle: FileHandle?
    var nextOffset: Int64 = 0
    var inFlight = 0
    init(output: JobOutput, ref: JobRef) { self.output = output; self.refs = [ref] }
}

extension Worker {
    static let maxFetchFailures = 3

    func startFetch(_ hash: String, size: Int64) {
        if fetches[hash] != nil { return }
        let f = Fetch(hash: hash, size: size)
        fetches[hash] = f
        do { f.receiver = try ArtifactReceiver(store: artifacts, hash: hash, size: size) } catch {
            return fetchFailed(f, "\(error)")
        }
        if size == 0 { _ = try? f.receiver?.accept(offset: 0, bytes: []); return fetched(f) }
        Log.info("fetching artifact \(hash.prefix(12)) (\(size) bytes)")
        pumpFetch(f)
    }

    func pumpFetch(_ f: Fetch) {
        guard welcomed else { return }
        while f.inFlight < Wire.chunkCredit && f.nextOffset < f.size {
            let n = Int(min(Int64(Wire.chunkSize), f.size - f.nextOffset))
            send(WireMessage(.get, GetHeader(hash: f.hash, offset: f.nextOffset, length: n)))
            f.nextOffset += Int64(n)
            f.inFlight += 1
        }
    }

    func receiveChunk(_ msg: WireMessage) throws {
        let h = try msg.decode(ChunkHeader.self)
        guard let f = fetches[h.hash] else { return }
        f.inFlight -= 1
        if let err = h.error { return fetchFailed(f, "coordinator: \(err)", retry: false) }
        if f.restarting {
            if f.inFlight <= 0 { restartFetch(f) }
            return
        }
        do {
            if try f.receiver?.accept(offset: h.offset, bytes: msg.payload.first ?? []) == true { return fetched(f) }
        } catch {
            Log.warn("artifact \(f.hash.prefix(12)): \(error)")
            f.failures += 1
            if f.failures >= Worker.maxFetchFailures { return fetchFailed(f, "\(error)", retry: false) }
            f.restarting = true
            if f.inFlight <= 0 { restartFetch(f) }
            return
        }
        pumpFetch(f)
    }

    func restartFetch(_ f: Fetch) {
        f.restarting = false
        f.inFlight = 0
        f.nextOffset = 0
        do { f.receiver = try ArtifactReceiver(store: artifacts, hash: f.hash, size: f.size) } catch { return fetchFailed(f, "\(error)", retry: false) }
        pumpFetch(f)
    }

    /// Verified and in the cache: start every job that was waiting only for it.
    func fetched(_ f: Fetch) {
        fetches[f.hash] = nil
        Log.info("artifact \(f.hash.prefix(12)) verified and cached")
        for (ref, job) in active where job.missing.contains(f.hash) {
            job.missing.remove(f.hash)
            if job.missing.isEmpty && !job.started { startJob(ref, job) }
        }
    }

    func fetchFailed(_ f: Fetch, _ reason: String, retry: Bool = false) {
        f.receiver?.abort()
        fetches[f.hash] = nil
        for (ref, job) in active where job.missing.contains(f.hash) {
            active[ref] = nil
            deliver(ref, PendingResult(message: WireMessage(.failed, FailedHeader(job: ref.job, attempt: ref.attempt,
                reason: "input artifact \(f.hash.prefix(12)): \(reason)", handback: false)), outputs: []))
        }
    }

    // MARK: uploads

    func startUpload(_ o: JobOutput, for ref: JobRef) {
        if let u = uploadsInFlight[o.hash] { u.refs.insert(ref); return }
        let u = Upload(output: o, ref: ref)
        guard let fh = FileHandle(forReadingAtPath: o.path) else {
            return uploadFailed(u, "output \(o.file) cannot be read")
        }
        u.handle = fh
        uploadsInFlight[o.hash] = u
        Log.info("uploading \(o.file) (\(o.size) bytes, \(o.hash.prefix(12)))")
        pumpUpload(u)
    }

    func pumpUpload(_ u: Upload) {
        // The first PUT goes even for an empty file: its PUTACK says "stored".
        while u.inFlight < Wire.chunkCredit && (u.nextOffset < u.output.size || (u.nextOffset == 0 && u.inFlight == 0)) {
            let n = Int(min(Int64(Wire.chunkSize), u.output.size - u.nextOffset))
            let bytes: [UInt8]
            do {
                try u.handle?.seek(toOffset: UInt64(u.nextOffset))
                bytes = Array(try u.handle?.read(upToCount: n) ?? Data())
            } catch { return uploadFailed(u, "output \(u.output.file) cannot be read: \(error)") }
            guard bytes.count == n else { return uploadFailed(u, "output \(u.output.file) changed while uploading") }
            send(WireMessage(.put, PutHeader(hash: u.output.hash, offset: u.nextOffset, size: u.output.size), payload: [bytes]))
            u.nextOffset += Int64(n)
            u.inFlight += 1
            if n == 0 { break }
        }
    }

    func receivePutAck(_ msg: WireMessage) throws {
        let h = try msg.decode(PutAckHeader.self)
        guard let u = uploadsInFlight[h.hash] else { return }
        u.inFlight -= 1
        if let err = h.error { return uploadFailed(u, "coordinator rejected \(u.output.file): \(err)") }
        if h.complete {
            uploadsInFlight[h.hash] = nil
            try? u.handle?.close()
            uploadedThisConnection.insert(h.hash)
            checkpointUploaded(h.hash)
            for ref in u.refs { sendResult(ref) }
            return
        }
        pumpUpload(u)
    }

    func uploadFailed(_ u: Upload, _ reason: String) {
        uploadsInFlight[u.output.hash] = nil
        try? u.handle?.close()
        Log.warn("upload failed: \(reason)")
        checkpointUploadFailed(u.output.hash)
        for ref in u.refs where pending[ref] != nil {
            pending[ref] = PendingResult(message: WireMessage(.failed, FailedHeader(job: ref.job, attempt: ref.attempt, reason: reason, handback: false)), outputs: [])
            sendResult(ref)
        }
    }
}
