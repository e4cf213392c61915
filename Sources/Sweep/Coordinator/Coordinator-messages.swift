import Basics
import Foundation

extension Coordinator {
    /// Application-level size limit per message, below libzmq's hard ZMQ_MAXMSGSIZE (which drops
    /// the connection): one artifact chunk plus headers. Bigger messages are logged and dropped.
    static let maxMessageBytes = Wire.chunkSize + 64 * 1024
    /// Uploads one worker may have open at once, and the bytes they may announce together. An
    /// honest worker uploads the outputs of its finished jobs (a few per slot); the caps bound the
    /// temp files (and disk) a peer can hold open.
    static let maxUploadsPerWorker = 16
    static let maxUploadBytesPerWorker: Int64 = 16 << 30
    /// Live workers at once; a HELLO beyond that is refused. 16,384: a 500-node allocation at
    /// 32 workers a node fits; each costs the coordinator a connection and a few hundred bytes.
    static let maxLiveWorkers = 16_384
    /// The listen backlog: every worker the cap admits may connect in the same instant (Linux
    /// caps it further at net.core.somaxconn, 4096 by default since 5.4: then a storm larger than
    /// that still loses some SYNs, and those workers retry after a second).
    static let listenBacklog = Int32(maxLiveWorkers)

    /// Handles one message from the ROUTER: `[route][kind][header][payload...]`. `userKey` is the
    /// CURVE public key the ZAP handler admitted the connection with (nil without CURVE).
    func handle(_ frames: [[UInt8]], userKey: String? = nil) {
        guard let route = frames.first else { return }
        let size = frames.reduce(0) { $0 + $1.count }
        let from = workers.id(route: route)
        func drop(_ why: String) {
            note(.dropped, route: route, userKey: userKey, job: nil, attempt: nil, why)
        }
        if size > Coordinator.maxMessageBytes { return drop("oversized (\(size) bytes)") }
        let msg: WireMessage
        do { msg = try WireMessage.parse(frames.dropFirst()) } catch { return drop("\(error)") }
        let now = monotonicSeconds()
        // A status client is not a worker: answered from memory, never registered, no state written.
        if msg.command == .status { return answerStatus(route: route, now: now) }
        if msg.command == .hello { return guarded({ try hello(msg, route: route, userKey: userKey, now: now) }, drop) }
        guard let id = from, let w = workers[id] else {
            // A worker we do not know (we restarted, or declared it dead): ask it to say HELLO again.
            if msg.command != .bye && (unknownRouteBye[route].map { now - $0 > timing.heartbeat / 2 } ?? true) {
                unknownRouteBye[route] = now
                if unknownRouteBye.count > 10_000 { unknownRouteBye.removeAll() }
                sendTo(route: route, WireMessage(.bye, ByeHeader(code: .rehello, reason: "unknown worker: say HELLO")))
            }
            return
        }
        // With CURVE the key is the identity: a message on this worker's route from another key
        // (a reused routing id) speaks for nobody.
        if options.serverKeys != nil && identities[w.id]?.key != userKey {
            return note(.refused, route: route, userKey: userKey, job: nil, attempt: nil,
                        "\(msg.command.rawValue) on worker \(w.id)'s connection from another key")
        }
        workers.heard(w.id, now: now)
        guarded({
            switch msg.command {
            case .ready: workers.setReady(w.id, true)
            case .heartbeat: break
            case .progress: try progress(msg, w)
            case .done: try done(msg, w, now: now)
            case .failed: try failed(msg, w)
            case .checkpoint: try checkpoint(msg, w, now: now)
            case .get: try get(msg, w)
            case .put: try put(msg, w, now: now)
            case .bye:
                Log.info("worker \(w.id) leaving")
                removeWorker(w.id, outcome: .handback, reason: "worker left", counts: false)
                ops.append(.workerState(id: w.id, state: WorkerState.left.rawValue))
            default: throw SweepError.protocolViolation("\(msg.command.rawValue) is not a worker command")
            }
        }, drop)
        // READY, a result, or a reconnect may have freed a slot: into the dispatch line.
        workers.offer(w.id)
    }

    private func guarded(_ body: () throws -> Void, _ drop: (String) -> Void) {
        do { try body() } catch { drop("\(error)") }
    }

    /// Counts a dropped or refused message in its peer's aggregated event (one row per peer, kind
    /// and minute) and logs the first of each, plus the first 50 of the run and every 1000th.
    func note(_ kind: SweepEventKind, route: [UInt8], userKey: String?, job: String?, attempt: Int?, _ why: String) {
        let registered = workers.id(route: route)
        let peer = registered ?? userKey.map { "key \($0)" } ?? "unregistered"
        let opened = eventCounts.note(kind: kind.rawValue, peer: peer, job: job, attempt: attempt,
                                      detail: registered == nil ? "\(why) (connection \(WireMessage.printable(route)))" : why,
                                      wall: wallClockSeconds())
        malformedLogged += 1
        if opened || malformedLogged <= 50 || malformedLogged % 1000 == 0 {
            let who = registered ?? "unknown peer \(WireMessage.printable(route))"
            Log.warn("\(kind == .dropped ? "dropped message" : "refused a message") from \(who): \(why)")
        }
    }

    /// A refusal of something a registered worker sent about an attempt that is not its own.
    func refuse(_ w: WorkerRecord, _ why: String, job: String? = nil, attempt: Int? = nil) {
        note(.refused, route: w.route, userKey: identities[w.id]?.key, job: job, attempt: attempt, why)
    }

    /// Rejects an attempt number or job name from a peer before anything uses it.
    static func checkRef(_ job: String, _ attempt: Int, _ command: String) throws {
        guard Wire.validAttempt(attempt) else { throw SweepError.protocolViolation("\(command) with attempt \(attempt) out of range 1...\(Wire.maxAttempt)") }
        guard !job.isEmpty, job.utf8.count <= Wire.maxNameBytes else { throw SweepError.protocolViolation("\(command) with a bad job name") }
    }

    func refuseHello(route: [UInt8], userKey: String?, worker: String, _ why: String) {
        note(.refused, route: route, userKey: userKey, job: nil, attempt: nil, "refused HELLO for worker \(worker): \(why)")
        sendTo(route: route, WireMessage(.bye, ByeHeader(code: .refused, reason: "HELLO refused: \(why)")))
    }

    func hello(_ msg: WireMessage, route: [UInt8], userKey: String?, now: Double) throws {
        let v = msg.fields.object?["v"]?.int ?? -1
        guard v == Wire.version else {
            note(.refused, route: route, userKey: userKey, job: nil, attempt: nil, "HELLO speaks protocol \(v), we speak \(Wire.version)")
            sendTo(route: route, WireMessage(.bye, ByeHeader(code: .refused, reason: "protocol version \(v) not supported (coordinator speaks \(Wire.version))")))
            return
        }
        let h = try msg.decode(HelloHeader.self)
        if jobs.allTerminal && searchesFinished {
            sendTo(route: route, WireMessage(.bye, ByeHeader(code: .sweepComplete, reason: "sweep complete")))
            return
        }
        guard h.slots >= 1, h.slots <= 1024, h.threads >= 1, h.threads <= 4096, h.cores >= 0, h.cores <= 1 << 20,
              !h.worker.isEmpty, h.worker.utf8.count <= Wire.maxNameBytes, h.host.utf8.count <= Wire.maxNameBytes,
              h.secret.utf8.count >= 16, h.secret.utf8.count <= 128, h.running.count <= Wire.maxHeldJobs else {
            throw SweepError.protocolViolation("HELLO with a bad worker id, host, secret, slots, threads, cores or too many held jobs")
        }
        for ref in h.running { try Coordinator.checkRef(ref.job, ref.attempt, "HELLO") }

        // Who may say HELLO as this worker id: one connection speaks for one id; an id someone
        // already used needs its secret and, with CURVE, the key it first came with.
        if let owner = routeOwner[route], owner != h.worker {
            return refuseHello(route: route, userKey: userKey, worker: h.worker, "this connection speaks for worker \(owner)")
        }
        let secretHash = SHA256Hasher.hex(Array(h.secret.utf8))
        if let known = identities[h.worker] {
            if options.serverKeys != nil, let key = known.key, key != userKey {
                return refuseHello(route: route, userKey: userKey, worker: h.worker, "the id belongs to another key")
            }
            if let bound = known.secretHash, bound != secretHash {
                return refuseHello(route: route, userKey: userKey, worker: h.worker, "the id belongs to another peer (wrong secret)")
            }
        } else if workers.count >= Coordinator.maxLiveWorkers {
            return refuseHello(route: route, userKey: userKey, worker: h.worker, "\(workers.count) workers connected already")
        }
        identities[h.worker] = WorkerIdentity(key: identities[h.worker]?.key ?? userKey, secretHash: secretHash)
        bindRoute(route, to: h.worker)

        if workers.join(id: h.worker, route: route, host: h.host, slots: h.slots, threads: h.threads, now: now) {
            Log.info("worker \(h.worker) joined (host \(h.host), \(h.slots) slot(s), \(h.threads) thread(s))")
        }
        let w = workers[h.worker]!
        ops.append(.worker(id: w.id, host: h.host, cores: h.cores, slots: h.slots, threads: h.threads, state: WorkerState.alive.rawValue))
        ops.append(.workerIdentity(id: w.id, key: userKey, secretHash: secretHash))

        // Reconcile what the worker says it holds with what the store says was dispatched to it.
        let claimed = Set(h.running)
        var cancel: [JobRef] = []
        for ref in claimed {
            switch jobs.reattach(ref, worker: w.id, now: now, ops: &ops) {
            case .ours: break
            case .reattached:
                workers.hold(w.id, ref)
                Log.info("worker \(w.id) reattached \(ref.job) attempt \(ref.attempt)")
            case .stale(let why):
                // Its work (a late result, if it finished while cut off) is dropped; the worker is
                // told to forget it.
                cancel.append(ref)
                note(.staleAttempt, route: route, userKey: userKey, job: ref.job, attempt: ref.attempt,
                     "worker \(w.id) holds \(ref.job) attempt \(ref.attempt): dropped, \(why)")
            }
        }
        for ref in w.running where !claimed.contains(ref) {
            // We thought it ran this; it does not know it (lost on the way): requeue, not its fault.
            workers.release(w.id, ref)
            attemptFailed(ref, outcome: .lost, reason: "worker \(w.id) reconnected without it", counts: false)
        }
        send(w.id, WireMessage(.welcome, WelcomeHeader(heartbeatMs: timing.heartbeatMs, liveness: timing.liveness, cancel: cancel)))
    }

    /// A route is bound to the first worker id it said HELLO as, for as long as we remember it.
    func bindRoute(_ route: [UInt8], to id: String) {
        if routeOwner[route] == nil && routeOwner.count >= 65_536 {
            // Forget routes no live worker uses (their connections are gone or were refused).
            routeOwner = routeOwner.filter { workers.id(route: $0.key) != nil }
        }
        routeOwner[route] = id
    }

    func progress(_ msg: WireMessage, _ w: WorkerRecord) throws {
        let h = try msg.decode(ProgressHeader.self)
        try Coordinator.checkRef(h.job, h.attempt, "PROGRESS")
        let ref = JobRef(job: h.job, attempt: h.attempt)
        guard w.running.contains(ref) else {
            return refuse(w, "PROGRESS \(h.job) attempt \(h.attempt) from \(w.id): not an attempt it runs", job: h.job, attempt: h.attempt)
        }
        var text = ""
        if let ep = h.epoch { text = "epoch \(ep)" + (h.epochs.map { "/\($0)" } ?? "") }
        if let m = h.metrics, !m.isEmpty {
            text += (text.isEmpty ? "" : " ") + m.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4g", $0.value))" }.joined(separator: " ")
        }
        if let message = h.message { text += (text.isEmpty ? "" : " ") + message }
        workers.setProgress(w.id, job: h.job, text: text)
        if let spe = h.metrics?["seconds"] { progressView.epochTook(kind: (jobs[h.job] ?? jobs[0]).kind, seconds: spe) }
        if h.epoch != nil || h.epochs != nil { workers.setEpoch(w.id, ref, EpochProgress(epoch: h.epoch, epochs: h.epochs)) }
        ops.append(.progress(job: h.job, text: String(decoding: msg.header, as: UTF8.self)))
        // Every epoch of every job is detail (-v): plain progress summarises the sweep.
        Log.debug("\(h.job) on \(w.id): \(text)")
    }

    func done(_ msg: WireMessage, _ w: WorkerRecord, now: Double) throws {
        let h = try msg.fields.decodeDone()
        try Coordinator.checkRef(h.job, h.attempt, "DONE")
        guard h.seconds >= 0, h.seconds <= 1e9, h.artifacts.count <= 1000 else { throw SweepError.protocolViolation("DONE with bad seconds or artifacts") }
        let ref = JobRef(job: h.job, attempt: h.attempt)
        // Only the worker an attempt was dispatched to reports on it; anyone else's DONE is refused
        // before it can touch the attempt (not even to fail it for a bad result).
        if let holder = jobs[h.job]?.holder(h.attempt), holder != w.id {
            return refuse(w, "refused DONE \(h.job) attempt \(h.attempt) from \(w.id): dispatched to \(holder)", job: h.job, attempt: h.attempt)
        }
        acks[w.id, default: []].append(ref)  // acknowledged whether accepted or dropped: the worker forgets it
        workers.release(w.id, ref)
        if let why = jobs.staleReason(ref, worker: w.id) {
            note(.duplicateDone, route: w.route, userKey: identities[w.id]?.key, job: h.job, attempt: h.attempt,
                 "late or duplicate DONE for \(h.job) attempt \(h.attempt) from \(w.id) dropped: \(why)")
            return
        }
        let resultBytes = msg.payload.first ?? Array("{}".utf8)
        guard (try? FastJSON.parse(resultBytes))?.object != nil else {
            Log.warn("DONE \(h.job) attempt \(h.attempt) from \(w.id): result is not a JSON object, counted as a failure")
            attemptFailed(ref, outcome: .failed, reason: "result is not a JSON object", counts: true)
            return
        }
        for (file, hash) in h.artifacts where file.utf8.count > Wire.maxNameBytes || !artifacts.has(hash) {
            Log.warn("DONE \(h.job) attempt \(h.attempt) from \(w.id): artifact \(file.prefix(Wire.maxNameBytes)) (\(hash.prefix(12))) was never uploaded")
            attemptFailed(ref, outcome: .failed, reason: "artifact \(file.prefix(Wire.maxNameBytes)) missing", counts: true)
            return
        }
        let artifactsJSON = h.artifacts.isEmpty ? "{}" : String(decoding: (try? JSONEncoder().encode(h.artifacts)) ?? Data("{}".utf8), as: UTF8.self)
        acceptDone(ref, worker: w.id, resultJSON: String(decoding: resultBytes, as: UTF8.self),
                   artifactsJSON: artifactsJSON, seconds: h.seconds, now: now)
        producedArtifacts[h.job] = h.artifacts
        for (file, hash) in h.artifacts { ops.append(.artifact(hash: hash, size: artifacts.size(hash) ?? 0, origin: "\(h.job)/\(file)")) }
        let kind = jobs[h.job]!.kind
        progressView.jobFinished(kind: kind, seconds: h.seconds)
        progressView.jobEvent("done \(h.job) attempt \(h.attempt) on \(w.id) (\(String(format: "%.2f", h.seconds))s)", kind: kind, total: jobs.count)
    }

    func failed(_ msg: WireMessage, _ w: WorkerRecord) throws {
        let h = try msg.decode(FailedHeader.self)
        try Coordinator.checkRef(h.job, h.attempt, "FAILED")
        let ref = JobRef(job: h.job, attempt: h.attempt)
        if let holder = jobs[h.job]?.holder(h.attempt), holder != w.id {
            return refuse(w, "refused FAILED \(h.job) attempt \(h.attempt) from \(w.id): dispatched to \(holder)", job: h.job, attempt: h.attempt)
        }
        acks[w.id, default: []].append(ref)
        workers.release(w.id, ref)
        let reason = String(h.reason.prefix(2000))
        if h.handback {
            // A worker hands jobs back only when it is stopping (SIGTERM; its BYE follows): give it
            // nothing more, or the next dispatch would go to a worker on its way out.
            workers.setReady(w.id, false)
            attemptFailed(ref, outcome: .handback, reason: reason, counts: false)
        } else {
            attemptFailed(ref, outcome: .failed, reason: reason, counts: true, permanent: h.permanent == true)
        }
    }

    func get(_ msg: WireMessage, _ w: WorkerRecord) throws {
        let h = try msg.decode(GetHeader.self)
        guard h.offset >= 0, h.offset <= Wire.maxArtifactBytes, h.length > 0, h.length <= Wire.chunkSize else {
            throw SweepError.protocolViolation("GET with bad range")
        }
        guard let size = artifacts.size(h.hash), let bytes = artifacts.read(h.hash, offset: h.offset, length: h.length) else {
            send(w.id, WireMessage(.chunk, ChunkHeader(hash: String(h.hash.prefix(64)), offset: h.offset, size: 0, error: "unknown artifact")))
            return
        }
        send(w.id, WireMessage(.chunk, ChunkHeader(hash: h.hash, offset: h.offset, size: size, error: nil), payload: [bytes]))
    }

    func put(_ msg: WireMessage, _ w: WorkerRecord, now: Double) throws {
        let h = try msg.decode(PutHeader.self)
        guard SHA256Hasher.isValidHex(h.hash), h.size >= 0, h.size <= Wire.maxArtifactBytes, h.offset >= 0, h.offset <= h.size else {
            throw SweepError.protocolViolation("PUT with a bad hash, size or offset")
        }
        func ack(_ complete: Bool, _ error: String?) {
            send(w.id, WireMessage(.putAck, PutAckHeader(hash: h.hash, offset: h.offset, complete: complete, error: error)))
        }
        // Outputs are uploaded by a worker for an attempt it runs; a peer with none has nothing to upload.
        guard !w.running.isEmpty else {
            refuse(w, "PUT \(h.hash.prefix(12)) from \(w.id): it runs no attempt")
            return ack(false, "no attempt of yours is running")
        }
        if artifacts.has(h.hash) { uploads[w.id, default: [:]][h.hash]?.receiver.abort(); uploads[w.id, default: [:]][h.hash] = nil; return ack(true, nil) }
        if h.offset == 0 {
            uploads[w.id, default: [:]][h.hash]?.receiver.abort()
            uploads[w.id, default: [:]][h.hash] = nil
            let inFlight = (uploads[w.id] ?? [:]).values.reduce(Int64(0)) { $0 + $1.receiver.size }
            guard (uploads[w.id]?.count ?? 0) < Coordinator.maxUploadsPerWorker, inFlight + h.size <= Coordinator.maxUploadBytesPerWorker else {
                refuse(w, "PUT \(h.hash.prefix(12)) from \(w.id): \(uploads[w.id]?.count ?? 0) uploads (\(inFlight) bytes) open already")
                return ack(false, "too many uploads in progress")
            }
            uploads[w.id, default: [:]][h.hash] = OpenUpload(receiver: try ArtifactReceiver(store: artifacts, hash: h.hash, size: h.size), lastChunk: now)
        }
        guard let u = uploads[w.id]?[h.hash] else { return ack(false, "no upload in progress at offset \(h.offset)") }
        u.lastChunk = now
        do {
            if try u.receiver.accept(offset: h.offset, bytes: msg.payload.first ?? []) {
                uploads[w.id, default: [:]][h.hash] = nil
                ops.append(.artifact(hash: h.hash, size: h.size, origin: "upload from \(w.id)"))
                ack(true, nil)
            } else {
                ack(false, nil)
            }
        } catch {
            uploads[w.id, default: [:]][h.hash] = nil
            refuse(w, "upload from \(w.id) rejected: \(error)")
            ack(false, "\(error)")
        }
    }

    /// Closes uploads that received nothing for one liveness period (their temp files go).
    func closeIdleUploads(_ now: Double) {
        for (id, open) in uploads where !open.isEmpty {
            for (hash, u) in open where now - u.lastChunk > timing.deadAfter {
                u.receiver.abort()
                uploads[id]?[hash] = nil
                Log.warn("upload \(hash.prefix(12)) from \(id) silent for \(Coordinator.seconds(timing.deadAfter)) s: closed")
            }
        }
    }
}
