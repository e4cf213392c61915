import Basics
import CSupport
import CZeroMQ
import Foundation

/// A sweep worker: one socket thread owning a DEALER to the coordinator and the PULL end of the
/// job threads' event pipe (zguide "ppworker" shape). Heartbeats by the clock; when the
/// coordinator falls silent it reconnects with exponential back-off and reattaches by itself
/// (HELLO lists the jobs it still runs); results stay buffered until the coordinator ACKs them.
public final class Worker {
    let options: WorkerOptions
    var timing: Timing
    let context: ZMQContext
    let events: ZMQSocket
    var dealer: ZMQSocket?
    let id: String
    /// Proves to the coordinator that a later HELLO with `id` comes from this process (HelloHeader.secret).
    let secret = HelloHeader.newSecret()
    var generation = 0
    let artifacts: ArtifactStore

    // Connection state.
    var welcomed = false
    var everWelcomed = false
    var lastHeard = 0.0
    var lastSent = 0.0
    var connectedAt = 0.0
    var backoffMs: Int
    /// When a coordinator last said anything (or the worker started): for `giveUpAfter`.
    var lastContact = monotonicSeconds()

    // Jobs.
    var active: [JobRef: ActiveJob] = [:]
    var pending: [JobRef: PendingResult] = [:]
    var fetches: [String: Fetch] = [:]
    var uploadsInFlight: [String: Upload] = [:]
    /// Artifacts the coordinator confirmed on this connection (a new connection re-checks).
    var uploadedThisConnection = Set<String>()
    var finishedJobs = 0
    var sweepComplete = false
    var exitCode: Int32 = 0

    public init(options: WorkerOptions) throws {
        guard options.slots >= 1 else { throw SweepError.invalid("--slots must be at least 1") }
        guard options.threads >= 1 else { throw SweepError.invalid("--threads must be at least 1") }
        if (options.keys == nil) != (options.serverKey == nil) {
            throw SweepError.invalid("CURVE needs both --key (own secret key) and --server-key (coordinator public key)")
        }
        if options.keys == nil && !Endpoint.isLoopback(options.connect) {
            Log.warn("connecting to \(options.connect) without CURVE: traffic is not encrypted")
        }
        self.options = options
        timing = options.timing
        backoffMs = timing.reconnectMinMs
        context = try ZMQContext()
        events = try ZMQSocket(context, .pull)
        try events.bind(JobRunner.eventsEndpoint)
        artifacts = try ArtifactStore(dir: options.cacheDir + "/artifacts")
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        id = "\(options.name ?? host)-\(getpid())-\(String(UInt32.random(in: 0 ... .max), radix: 36))"
        Log.role = "worker \(id)"
    }

    deinit { context.shutdown() }

    // MARK: connection

    func connect() throws {
        dealer = nil  // closes the old socket (linger 0)
        generation += 1
        let s = try ZMQSocket(context, .dealer)
        // A fresh routing identity per connection: a stale session on the coordinator can never
        // swallow the new one; the stable worker id travels in HELLO. The random tail keeps another
        // peer from guessing it and reusing it once this connection is gone.
        try s.setIdentity("\(id)/\(generation)/\(String(UInt64.random(in: 0 ... .max), radix: 36))")
        try s.set(ZMQ_RECONNECT_IVL, Int32(100))
        try s.set(ZMQ_RECONNECT_IVL_MAX, Int32(timing.reconnectMaxMs))
        if let keys = options.keys, let server = options.serverKey { try s.makeCurveClient(keys, serverPublicKey: server) }
        try s.connect(options.connect)
        dealer = s
        welcomed = false
        connectedAt = monotonicSeconds()
        lastHeard = connectedAt
        sendHello()
    }

    func sendHello() {
        let running = Array(Set(active.keys).union(pending.keys)).sorted { ($0.job, $0.attempt) < ($1.job, $1.attempt) }
        send(WireMessage(.hello, HelloHeader(worker: id, host: ProcessInfo.processInfo.hostName, pid: getpid(),
                                             cores: ProcessInfo.processInfo.activeProcessorCount, slots: options.slots,
                                             threads: options.threads, running: running, secret: secret)))
    }

    func send(_ m: WireMessage) {
        guard let d = dealer else { return }
        do { try d.send(m.frames, dontWait: true) } catch {
            // EAGAIN: the pipe to an absent coordinator is full; heartbeats/liveness will recover.
        }
        lastSent = monotonicSeconds()
    }

    // MARK: main loop

    /// Runs until the sweep completes (BYE), a stop signal (hands jobs back), or a fatal error.
    public func run() throws -> Int32 {
        Log.info("connecting to \(options.connect) (\(options.slots) slot(s), \(options.threads) BLAS thread(s), cache \(options.cacheDir))")
        try connect()
        while true {
            if csupport_stop_requested() != 0 { stopGracefully(); return exitCode }
            if sweepComplete { return exitCode }
            guard let d = dealer else { return exitCode }
            let ready = try ZMQPoll.readable([d, events], timeoutMs: min(timing.heartbeatMs, 250))
            if ready[1] { while let f = try? events.receive(dontWait: true) { handleJobEvent(f) } }
            if ready[0] { while let f = try? d.receive(dontWait: true) { handleCoordinator(f); if dealer !== d { break } } }
            let now = monotonicSeconds()
            if now - lastHeard > timing.deadAfter {
                if let limit = options.giveUpAfter, now - lastContact > limit, active.isEmpty {
                    Log.error("no coordinator answered at \(options.connect) for \(Int(now - lastContact)) s (\(everWelcomed ? "it fell silent" : "never welcomed")): giving up; the sweep there may be complete (--give-up-after 0: keep trying)")
                    return 3
                }
                // Jittered: a thousand workers that lost the coordinator together do not all come back in one instant.
                var random = SystemRandomNumberGenerator()
                let waitMs = Wire.jittered(backoffMs, using: &random)
                Log.warn(welcomed ? "coordinator silent for \(String(format: "%.1f", now - lastHeard))s: reconnecting in \(waitMs) ms"
                         : everWelcomed ? "no WELCOME from \(options.connect) again (coordinator stopped or restarting): retrying in \(waitMs) ms"
                         : options.keys == nil ? "no answer from \(options.connect) (no coordinator there yet, or it has finished): retrying in \(waitMs) ms"
                         : "no WELCOME from \(options.connect) (no coordinator there, or it does not allow our key): retrying in \(waitMs) ms")
                waitDrainingEvents(ms: waitMs)
                backoffMs = min(backoffMs * 2, timing.reconnectMaxMs)
                try connect()
                continue
            }
            if welcomed && now - lastSent >= timing.heartbeat { send(WireMessage(.heartbeat, header: WireMessage.emptyHeader)) }
        }
    }

    /// Back-off wait that still takes job events (so job threads never block on a full pipe).
    func waitDrainingEvents(ms: Int) {
        let end = monotonicSeconds() + Double(ms) / 1000
        while monotonicSeconds() < end && csupport_stop_requested() == 0 {
            if let r = try? ZMQPoll.readable([events], timeoutMs: max(1, Int((end - monotonicSeconds()) * 1000))), r[0] {
                while let f = try? events.receive(dontWait: true) { handleJobEvent(f) }
            }
        }
    }

    func handleCoordinator(_ frames: [[UInt8]]) {
        let msg: WireMessage
        do { msg = try WireMessage.parse(frames[...]) } catch {
            Log.warn("dropped message from coordinator: \(error)")
            return
        }
        lastHeard = monotonicSeconds()
        lastContact = lastHeard
        do {
            switch msg.command {
            case .welcome:
                let h = try msg.decode(WelcomeHeader.self)
                welcomed = true
                everWelcomed = true
                backoffMs = timing.reconnectMinMs
                timing.heartbeatMs = h.heartbeatMs
                timing.liveness = h.liveness
                Log.info("welcomed by \(options.connect)")
                for ref in h.cancel { cancelJob(ref, reason: "coordinator no longer needs it") }
                resumeAfterWelcome()
                send(WireMessage(.ready, header: WireMessage.emptyHeader))
            case .heartbeat: break
            case .job: try receiveJob(msg)
            case .cancel:
                let h = try msg.decode(CancelHeader.self)
                cancelJob(JobRef(job: h.job, attempt: h.attempt), reason: h.reason)
            case .ack:
                for ref in try msg.fields.decodeAck() { acknowledged(ref) }
            case .chunk: try receiveChunk(msg)
            case .putAck: try receivePutAck(msg)
            case .bye:
                let h = try msg.decode(ByeHeader.self)
                switch h.code {
                case .rehello:
                    welcomed = false
                    sendHello()
                case .sweepComplete:
                    if options.stayAfterSweep { break }
                    Log.info("coordinator says: sweep complete; exiting")
                    for ref in Array(active.keys) { cancelJob(ref, reason: "sweep complete") }
                    sweepComplete = true
                case .refused, .leaving:
                    // A protocol mismatch names both sides' versions in one line.
                    let ours = h.reason.contains("protocol") ? "; this worker speaks protocol \(Wire.version): install the coordinator's ranksweep here" : ""
                    Log.error("coordinator refused us: \(h.reason)\(ours)")
                    exitCode = 2
                    sweepComplete = true
                }
            default:
                Log.warn("dropped \(msg.command.rawValue) from coordinator: not a coordinator command")
            }
        } catch {
            Log.warn("dropped \(msg.command.rawValue) from coordinator: \(error)")
        }
    }

    /// SIGTERM: hand every running job back (not a failure), say BYE, wait briefly for ACKs.
    func stopGracefully() {
        Log.info("stopping: handing back \(active.count) job(s)")
        // The jobs stop computing first; their newest checkpoints reach the coordinator before the handbacks.
        for job in active.values { job.control.cancel() }
        uploadCheckpointsBeforeStopping()
        for (ref, job) in active {
            job.control.cancel()  // again: a JOB may have arrived while the checkpoints uploaded
            let m = WireMessage(.failed, FailedHeader(job: ref.job, attempt: ref.attempt, reason: "worker stopping", handback: true))
            pending[ref] = PendingResult(message: m, outputs: [])
            if welcomed { send(m) }
        }
        active.removeAll()
        if welcomed { send(WireMessage(.bye, ByeHeader(code: .leaving, reason: "worker stopping"))) }
        // Results in flight deserve a moment to be acknowledged; then close (linger 0).
        let end = monotonicSeconds() + min(1.0, timing.heartbeat * 2)
        while !pending.isEmpty && monotonicSeconds() < end, let d = dealer {
            if let r = try? ZMQPoll.readable([d], timeoutMs: 50), r[0] {
                while let f = try? d.receive(dontWait: true) { handleCoordinator(f) }
            }
        }
    }
}
