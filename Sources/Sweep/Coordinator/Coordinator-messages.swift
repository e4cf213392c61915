import Basics
import Foundation

extension Coordinator {
    /// Application-level size limit per message, below libzmq's hard ZMQ_MAXMSGSIZE (which drops
    /// the connection): one artifact chunk plus headers. Bigger messages are logged and dropped.
    static let maxMessageBytes = Wire.chunkSize + 64 * 1024

    /// Handles one message from the ROUTER: `[route][kind][header][payload...]`.
    func handle(_ frames: [[UInt8]]) {
        guard let route = frames.first else { return }
        let size = frames.reduce(0) { $0 + $1.count }
        let from = workerByRoute[route]
        func drop(_ why: String) {
            malformedLogged += 1
            if malformedLogged <= 50 || malformedLogged % 1000 == 0 {
                Log.warn("dropped message from \(from ?? "unknown peer \(WireMessage.printable(route))"): \(why)")
            }
            ops.append(.event(kind: "dropped", job: nil, attempt: nil, worker: from, detail: why))
        }
        if size > Coordinator.maxMessageBytes { return drop("oversized (\(size) bytes)") }
        let msg: WireMessage
        do { msg = try WireMessage.parse(frames.dropFirst()) } catch { return drop("\(error)") }
        let now = Clock.now()
        // A status client is not a worker: answered from memory, never registered, no state written.
        if msg.command == .status { return answerStatus(route: route, now: now) }
        if msg.command == .hello { return guarded({ try hello(msg, route: route, now: now) }, drop) }
        guard let id = from, let w = workers[id] else {
            // A worker we do not know (we restarted, or declared it dead): ask it to say HELLO again.
            if msg.command != .bye && (unknownRouteBye[route].map { now - $0 > timing.heartbeat / 2 } ?? true) {
                unknownRouteBye[route] = now
                if unknownRouteBye.count > 10_000 { unknownRouteBye.removeAll() }
                sendTo(route: route, WireMessage(.bye, ByeHeader(reason: "unknown worker: say HELLO", rehello: true)))
            }
            return
        }
        w.expiry = now + timing.deadAfter
        guarded({
            switch msg.command {
            case .ready: w.ready = true
            case .heartbeat: break
            case .progress: try progress(msg, w)
            case .done: try done(msg, w, now: now)
            case .failed: try failed(msg, w)
            case .get: try get(msg, w)
            case .put: try put(msg, w)
            case .bye:
                Log.info("worker \(w.id) leaving")
                removeWorker(w, outcome: "handback", reason: "worker left", counts: false)
                ops.append(.workerState(id: w.id, state: "left"))
            default: throw SweepError.protocolViolation("\(msg.command.rawValue) is not a worker command")
            }
        }, drop)
    }

    private func guarded(_ body: () throws -> Void, _ drop: (String) -> Void) {
        do { try body() } catch { drop("\(error)") }
    }

    func hello(_ msg: WireMessage, route: [UInt8], now: Double) throws {
        let h = try msg.decode(HelloHeader.self)
        guard h.v == Wire.version else {
            Log.warn("worker \(h.worker) speaks protocol \(h.v), we speak \(Wire.version): refused")
            sendTo(route: route, WireMessage(.bye, ByeHeader(reason: "protocol version \(h.v) not supported (coordinator speaks \(Wire.version))", rehello: false)))
            return
        }
        if terminalCount == jobs.count {
            sendTo(route: route, WireMessage(.bye, ByeHeader(reason: "sweep complete", rehello: false)))
            return
        }
        guard h.slots >= 1, h.slots <= 1024, !h.worker.isEmpty, h.worker.utf8.count <= 200 else {
            throw SweepError.protocolViolation("HELLO with bad worker id or slots")
        }
        let w: WorkerEntry
        if let old = workers[h.worker] {
            // Same worker process, new connection: keep its record, move the route.
            if workerByRoute[old.route] == old.id { workerByRoute[old.route] = nil }
            old.route = route
            w = old
        } else {
            w = WorkerEntry(id: h.worker, route: route, host: h.host, slots: h.slots, threads: h.threads, expiry: now + timing.deadAfter)
            workers[h.worker] = w
            Log.info("worker \(h.worker) joined (host \(h.host), \(h.slots) slot(s), \(h.threads) thread(s))")
        }
        workerByRoute[route] = w.id
        w.expiry = now + timing.deadAfter
        w.ready = false
        ops.append(.worker(id: w.id, host: h.host, cores: h.cores, slots: h.slots, threads: h.threads, state: "alive"))

        // Reconcile what the worker says it runs with what we think it runs.
        let claimed = Set(h.running)
        var cancel: [JobRef] = []
        func stale(_ ref: JobRef, _ why: String) {
            cancel.append(ref)
            Log.warn("worker \(w.id) still holds \(ref.job) attempt \(ref.attempt) (running, or a late result): dropped, \(why)")
            ops.append(.event(kind: "stale-attempt", job: ref.job, attempt: ref.attempt, worker: w.id, detail: why))
        }
        for ref in claimed {
            guard let i = jobIndex[ref.job] else { cancel.append(ref); continue }
            let e = jobs[i]
            if e.terminal {
                stale(ref, "job already \(e.state == .done ? "done" : "failed")")
                continue
            }
            if e.runningOn[ref.attempt] == w.id { continue }  // already ours
            // An attempt above the last one recorded was dispatched just before a crash, before its
            // dispatch was committed: as good as orphaned, if nothing else runs the job now.
            if ref.attempt > e.attempt && e.runningOn.isEmpty && e.state != .running {
                e.orphaned.insert(ref.attempt)
                e.attempt = ref.attempt
            }
            if e.runningOn[ref.attempt] == nil && e.orphaned.contains(ref.attempt) {
                // The job it was running when we restarted: take it back as running.
                e.orphaned.remove(ref.attempt)
                e.runningOn[ref.attempt] = w.id
                if e.state != .running { e.state = .running; e.dispatchedAt = now }
                e.attemptStarted[ref.attempt] = now
                w.running.insert(ref)
                ops.append(.reattach(ref, worker: w.id))
                Log.info("worker \(w.id) reattached \(ref.job) attempt \(ref.attempt)")
            } else {
                // Declared dead meanwhile, or superseded: stale. Its work (a late result, if it finished
                // while cut off) is dropped, not counted: the worker is told to forget it.
                stale(ref, "attempt \(ref.attempt) is no longer open")
            }
        }
        for ref in w.running where !claimed.contains(ref) {
            // We thought it ran this; it does not know it (lost on the way): requeue, not its fault.
            w.running.remove(ref)
            attemptFailed(ref, outcome: "lost", reason: "worker \(w.id) reconnected without it", counts: false)
        }
        send(w, WireMessage(.welcome, WelcomeHeader(heartbeatMs: timing.heartbeatMs, liveness: timing.liveness, cancel: cancel)))
    }

    func progress(_ msg: WireMessage, _ w: WorkerEntry) throws {
        let h = try msg.decode(ProgressHeader.self)
        let ref = JobRef(job: h.job, attempt: h.attempt)
        guard w.running.contains(ref) else { return }  // stale progress: ignore quietly
        var text = ""
        if let ep = h.epoch { text = "epoch \(ep)" + (h.epochs.map { "/\($0)" } ?? "") }
        if let m = h.metrics, !m.isEmpty {
            text += (text.isEmpty ? "" : " ") + m.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4g", $0.value))" }.joined(separator: " ")
        }
        if let message = h.message { text += (text.isEmpty ? "" : " ") + message }
        w.progress[h.job] = text
        if let spe = h.metrics?["seconds"] { progressView.epochTook(kind: jobs[jobIndex[h.job] ?? 0].planned.kind, seconds: spe) }
        if h.epoch != nil || h.epochs != nil {
            if w.epochs.count > w.running.count + 16 { w.epochs = w.epochs.filter { w.running.contains($0.key) } }
            w.epochs[ref] = EpochProgress(epoch: h.epoch, epochs: h.epochs)
        }
        ops.append(.progress(job: h.job, text: String(decoding: msg.header, as: UTF8.self)))
        progressView.jobEvent("\(h.job) on \(w.id): \(text)", kind: jobs[jobIndex[h.job] ?? 0].planned.kind, coordinator: self)
    }

    func done(_ msg: WireMessage, _ w: WorkerEntry, now: Double) throws {
        let h = try msg.fields.decodeDone()
        let ref = JobRef(job: h.job, attempt: h.attempt)
        acks[w.id, default: []].append(ref)  // acknowledged whether accepted or dropped: the worker forgets it
        w.running.remove(ref)
        w.progress[h.job] = nil
        if !w.epochs.isEmpty { w.epochs[ref] = nil }
        let resultBytes = msg.payload.first ?? Array("{}".utf8)
        guard (try? FastJSON.parse(resultBytes))?.object != nil else {
            Log.warn("DONE \(h.job) attempt \(h.attempt) from \(w.id): result is not a JSON object, counted as a failure")
            attemptFailed(ref, outcome: "failed", reason: "result is not a JSON object", counts: true)
            return
        }
        for (file, hash) in h.artifacts where !artifacts.has(hash) {
            Log.warn("DONE \(h.job) attempt \(h.attempt) from \(w.id): artifact \(file) (\(hash.prefix(12))) was never uploaded")
            attemptFailed(ref, outcome: "failed", reason: "artifact \(file) missing", counts: true)
            return
        }
        let artifactsJSON = h.artifacts.isEmpty ? "{}" : String(decoding: (try? JSONEncoder().encode(h.artifacts)) ?? Data("{}".utf8), as: UTF8.self)
        if let why = acceptDone(ref, worker: w.id, resultJSON: String(decoding: resultBytes, as: UTF8.self),
                                artifactsJSON: artifactsJSON, seconds: h.seconds, now: now) {
            Log.warn("late or duplicate DONE for \(h.job) attempt \(h.attempt) from \(w.id) dropped: \(why)")
            ops.append(.event(kind: "duplicate-done", job: h.job, attempt: h.attempt, worker: w.id, detail: why))
            return
        }
        producedArtifacts[h.job] = h.artifacts
        for (file, hash) in h.artifacts { ops.append(.artifact(hash: hash, size: artifacts.size(hash) ?? 0, origin: "\(h.job)/\(file)")) }
        progressView.jobFinished(kind: jobs[jobIndex[h.job]!].planned.kind, seconds: h.seconds)
        progressView.jobEvent("done \(h.job) attempt \(h.attempt) on \(w.id) (\(String(format: "%.2f", h.seconds))s)", kind: jobs[jobIndex[h.job]!].planned.kind, coordinator: self)
    }

    func failed(_ msg: WireMessage, _ w: WorkerEntry) throws {
        let h = try msg.decode(FailedHeader.self)
        let ref = JobRef(job: h.job, attempt: h.attempt)
        acks[w.id, default: []].append(ref)
        w.running.remove(ref)
        w.progress[h.job] = nil
        if !w.epochs.isEmpty { w.epochs[ref] = nil }
        let reason = String(h.reason.prefix(2000))
        if h.handback {
            attemptFailed(ref, outcome: "handback", reason: reason, counts: false)
        } else {
            attemptFailed(ref, outcome: "failed", reason: reason, counts: true)
        }
    }

    func get(_ msg: WireMessage, _ w: WorkerEntry) throws {
        let h = try msg.decode(GetHeader.self)
        guard h.offset >= 0, h.length > 0, h.length <= Wire.chunkSize else { throw SweepError.protocolViolation("GET with bad range") }
        guard let size = artifacts.size(h.hash), let bytes = artifacts.read(h.hash, offset: h.offset, length: h.length) else {
            send(w, WireMessage(.chunk, ChunkHeader(hash: h.hash, offset: h.offset, size: 0, error: "unknown artifact")))
            return
        }
        send(w, WireMessage(.chunk, ChunkHeader(hash: h.hash, offset: h.offset, size: size, error: nil), payload: [bytes]))
    }

    func put(_ msg: WireMessage, _ w: WorkerEntry) throws {
        let h = try msg.decode(PutHeader.self)
        let key = w.id + "/" + h.hash
        func ack(_ complete: Bool, _ error: String?) {
            send(w, WireMessage(.putAck, PutAckHeader(hash: h.hash, offset: h.offset, complete: complete, error: error)))
        }
        if artifacts.has(h.hash) { uploads[key] = nil; return ack(true, nil) }
        guard h.size >= 0, h.size <= 64 << 30 else { throw SweepError.protocolViolation("PUT with bad size") }
        if h.offset == 0 { uploads[key]?.abort(); uploads[key] = try ArtifactReceiver(store: artifacts, hash: h.hash, size: h.size) }
        guard let r = uploads[key] else { return ack(false, "no upload in progress at offset \(h.offset)") }
        do {
            if try r.accept(offset: h.offset, bytes: msg.payload.first ?? []) {
                uploads[key] = nil
                ops.append(.artifact(hash: h.hash, size: h.size, origin: "upload from \(w.id)"))
                ack(true, nil)
            } else {
                ack(false, nil)
            }
        } catch {
            uploads[key] = nil
            Log.warn("upload from \(w.id) rejected: \(error)")
            ack(false, "\(error)")
        }
    }
}
