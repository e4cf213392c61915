import Basics
import CZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `ranksweep bench coordinator --simulated-workers N --job-seconds S`: a real coordinator (its
/// own process, SQLite state on) serving N simulated workers that speak the wire protocol over
/// real loopback TCP from this one process and one poll loop. Each worker connects at once
/// (the storm a Slurm allocation makes), says HELLO with one slot, READY, and answers each JOB
/// with DONE after S seconds; the sweep has `jobsPerWorker` x N no-op jobs.
///
/// Efficiency counts the time workers hold a job against N x the span: "including ramp-up" from
/// the first JOB any worker received to the last DONE; "after ramp-up" from the moment the last
/// worker received its first JOB. The store is read afterwards: every job done, one attempt each.
public enum SwarmBenchmark {
    public struct Settings: Sendable {
        public var workers: Int
        public var jobSeconds: Double
        public var jobsPerWorker: Int
        /// The `ranksweep` binary that runs the coordinator.
        public var executable: String
        /// State dir, sweep file and coordinator log go here (removed by the caller).
        public var directory: String
        public init(workers: Int, jobSeconds: Double, jobsPerWorker: Int, executable: String, directory: String) {
            self.workers = workers; self.jobSeconds = jobSeconds; self.jobsPerWorker = jobsPerWorker
            self.executable = executable; self.directory = directory
        }

        /// The problem with these settings in one line naming the flag, or nil.
        public var problem: String? {
            if !(1...20_000).contains(workers) { return "--simulated-workers must be in 1...20000, got \(workers)" }
            if !(jobSeconds >= 0 && jobSeconds <= 3600) { return "--job-seconds must be in 0...3600, got \(jobSeconds)" }
            if !(1...100_000).contains(jobsPerWorker) { return "--jobs-per-worker must be in 1...100000, got \(jobsPerWorker)" }
            if workers * jobsPerWorker > 10_000_000 { return "--simulated-workers x --jobs-per-worker must be at most 10,000,000" }
            return nil
        }
    }

    public struct Report: Sendable {
        public var workers: Int
        public var jobs: Int
        public var jobSeconds: Double
        /// Busy worker-seconds / (workers x span), from the first JOB to the last DONE.
        public var efficiency: Double
        /// The same from when every worker had its first JOB.
        public var efficiencyAfterRampUp: Double
        public var rampUpSeconds: Double
        public var spanSeconds: Double
        public var jobsPerSecond: Double
        /// Connect -> WELCOME, seconds: median, p99, max; and how many took over a second.
        public var welcomeMedian: Double, welcomeP99: Double, welcomeMax: Double
        public var welcomedLate: Int
        /// Workers that got WELCOME at all.
        public var welcomed: Int
        /// DONE sent -> next JOB received on the same worker, seconds.
        public var gapMedian: Double, gapP99: Double
        public var coordinatorCPUSeconds: Double
        public var coordinatorPeakRSSBytes: Int
        /// The simulator's own CPU over the span, and how late it sent DONEs (p99, seconds).
        public var simulatorCPUSeconds: Double
        public var simulatorLateP99: Double
        /// From the store: jobs done, jobs with exactly one attempt, attempts in all.
        public var storeDone: Int, storeSingleAttempt: Int, storeAttempts: Int
        /// JOBs the simulator saw for a job it had already seen.
        public var duplicateJobs: Int

        public var exactlyOnce: Bool { storeDone == jobs && storeSingleAttempt == jobs && storeAttempts == jobs && duplicateJobs == 0 }
        /// The simulator, not the coordinator, limited the figures: its loop was busy most of the
        /// span, or it sent DONEs late by more than 5% of a job.
        public var simulatorBound: Bool {
            simulatorCPUSeconds > 0.8 * spanSeconds || simulatorLateP99 > max(0.005, 0.05 * jobSeconds)
        }
    }

    final class SimWorker {
        let socket: ZMQSocket
        var connectedAt = 0.0
        var welcomedAt: Double?
        var firstJobAt: Double?
        var lastDoneAt: Double?
        var lastSent = 0.0
        var busy = 0.0
        var busyAfter: [(start: Double, end: Double)] = []
        var finished = false
        /// Queued to be read on the next turn (we sent on it, which may have taken its signal).
        var recheck = false
        init(socket: ZMQSocket) { self.socket = socket }
    }

    /// Runs one swarm; progress lines go to `progress`.
    public static func run(_ settings: Settings, progress: (String) -> Void) throws -> Report {
        if let p = settings.problem { throw SweepError.invalid(p) }
        let n = settings.workers, total = n * settings.jobsPerWorker
        try AtomicFile.makeDirectory(settings.directory)
        // Each simulated worker holds a TCP connection and a libzmq mailbox here.
        let descriptors = raiseDescriptorLimit(needed: 2 * n + 256)
        guard descriptors >= 2 * n + 256 else {
            throw SweepError.invalid("--simulated-workers \(n) needs \(2 * n + 256) file descriptors in this process; the limit is \(descriptors) (ulimit -Hn; raising it needs CAP_SYS_RESOURCE): run fewer")
        }
        let sweepFile = settings.directory + "/swarm.yaml", state = settings.directory + "/state"
        try AtomicFile.write("noop: \(total)\n", to: sweepFile)
        let port = try freeLoopbackPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        var env = ProcessInfo.processInfo.environment
        env["RANKSWEEP_LOG_LEVEL"] = "warn"
        let coordinator = try SpawnedChild(path: settings.executable,
                                           arguments: ["coordinator", "--sweep", sweepFile, "--state-dir", state, "--bind", endpoint, "--progress", "none",
                                                       "--report-interval", "86400"],   // dispatch, not the live report
                                           environment: env, stderrPath: settings.directory + "/coordinator.log", stdoutToStderrFile: true)
        var reaped = false
        defer { if !reaped { kill(coordinator.pid, SIGKILL); var st: Int32 = 0; waitpid(coordinator.pid, &st, 0) } }
        try waitForListener(port: port, coordinator: coordinator, log: settings.directory + "/coordinator.log")

        let context = try ZMQContext()
        zmq_ctx_set(context.handle, ZMQ_MAX_SOCKETS, Int32(n + 64))
        zmq_ctx_set(context.handle, ZMQ_IO_THREADS, 1)
        var sims: [SimWorker] = []
        sims.reserveCapacity(n)
        let timing = Timing.fromEnvironment()
        // Sockets and HELLOs are made first, so that the storm below is as tight as a real
        // allocation's (whose workers start in parallel) and the simulator's setup is not counted.
        var hellos: [[[UInt8]]] = []
        for k in 0..<n {
            let s = try ZMQSocket(context, .dealer)
            try s.setIdentity("sim\(k)-\(UInt32.random(in: 0 ... .max))")
            sims.append(SimWorker(socket: s))
            hellos.append(WireMessage(.hello, HelloHeader(worker: "sim-\(getpid())-\(k)", host: "swarm", pid: getpid(), cores: 1, slots: 1,
                                                          threads: 1, running: [])).frames)
        }
        let start = monotonicSeconds()
        let cpuStart = processCPUSeconds()
        // Every worker connects in the same instant, HELLO queued behind the connection.
        for (k, w) in sims.enumerated() {
            try w.socket.connect(endpoint)
            try w.socket.send(hellos[k], dontWait: true)
            w.connectedAt = monotonicSeconds()
            w.lastSent = w.connectedAt
        }
        hellos = []
        progress("\(n) simulated workers connecting to \(endpoint)")

        // One epoll over the sockets' ZMQ_FDs (each socket's libzmq mailbox): a loop turn costs what
        // is ready, not N (zmq_poll over N sockets polls N descriptors every turn, milliseconds at
        // 10,000). The mailbox signals "look again", not "a message": every socket it names, and
        // every socket we sent on (a send may take the signal), is read until it has nothing.
        let epoll = try Epoll()
        for (k, w) in sims.enumerated() {
            var fd: Int32 = -1
            var size = MemoryLayout<Int32>.size
            guard zmq_getsockopt(w.socket.handle, ZMQ_FD, &fd, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_FD)") }
            try epoll.add(fd, tag: UInt32(k))
        }
        var ready: [Int] = []
        var recheck: [Int] = Array(0 ..< n)
        var nextHeartbeats = start
        // Every job lasts the same S, so DONEs fall due in the order their JOBs arrived: a FIFO.
        var due: [(at: Double, worker: Int, ref: JobRef)] = []
        var dueHead = 0
        var seen = Set<String>()
        var duplicates = 0, finishedCount = 0, doneSent = 0
        var gaps: [Double] = [], late: [Double] = []
        gaps.reserveCapacity(total); late.reserveCapacity(total)
        var firstJob = Double.infinity, lastDone = 0.0
        var nextProgress = start + 2
        let deadline = start + 120 + Double(settings.jobsPerWorker) * settings.jobSeconds * 4 + Double(n) / 100

        while finishedCount < n {
            let now0 = monotonicSeconds()
            guard now0 < deadline else {
                throw SweepError.io("swarm did not finish in \(Int(deadline - start)) s: \(doneSent) of \(total) DONE sent, \(finishedCount) of \(n) workers told the sweep is complete (coordinator log: \(settings.directory)/coordinator.log)")
            }
            if let code = coordinator.exitIfEnded() {
                reaped = true
                throw SweepError.io("the coordinator exited early (code \(code.code)); see \(settings.directory)/coordinator.log")
            }
            var timeout = recheck.isEmpty ? 100 : 0
            if dueHead < due.count { timeout = max(0, min(timeout, Int(ceil((due[dueHead].at - now0) * 1000)))) }
            swap(&ready, &recheck)
            recheck.removeAll(keepingCapacity: true)
            try epoll.wait(timeoutMs: timeout) { ready.append(Int($0)) }
            var now = monotonicSeconds()
            for k in ready { sims[k].recheck = false }
            if !ready.isEmpty {
                for k in ready {
                    let w = sims[k]
                    while let frames = try w.socket.receive(dontWait: true) {
                        guard let msg = try? WireMessage.parse(frames[...]) else { continue }
                        switch msg.command {
                        case .welcome:
                            if w.welcomedAt == nil { w.welcomedAt = now }
                            try w.socket.send(WireMessage(.ready, header: WireMessage.emptyHeader).frames, dontWait: true)
                            w.lastSent = now
                            if !w.recheck { w.recheck = true; recheck.append(k) }
                        case .job:
                            let h = try msg.fields.decodeJob()
                            if !seen.insert(h.job).inserted { duplicates += 1 }
                            if w.firstJobAt == nil { w.firstJobAt = now }
                            firstJob = min(firstJob, now)
                            if let d = w.lastDoneAt { gaps.append(now - d); w.lastDoneAt = nil }
                            due.append((now + settings.jobSeconds, k, JobRef(job: h.job, attempt: h.attempt)))
                            w.busyAfter.append((now, .infinity))
                        case .bye:
                            if let bye = try? msg.decode(ByeHeader.self), bye.code == .refused {
                                throw SweepError.invalid("the coordinator refused simulated worker \(k): \(bye.reason)")
                            }
                            if !w.finished { w.finished = true; finishedCount += 1 }
                        case .cancel, .ack, .heartbeat: break
                        default: break
                        }
                    }
                }
            }
            now = monotonicSeconds()
            while dueHead < due.count && due[dueHead].at <= now {
                let d = due[dueHead]
                dueHead += 1
                let w = sims[d.worker]
                let done = WireMessage.done(DoneHeader(job: d.ref.job, attempt: d.ref.attempt, artifacts: [:], seconds: settings.jobSeconds),
                                            result: Array("{}".utf8))
                try w.socket.send(done.frames, dontWait: true)
                if !w.recheck { w.recheck = true; recheck.append(d.worker) }
                late.append(now - d.at)
                w.lastSent = now
                w.lastDoneAt = now
                if let last = w.busyAfter.indices.last { w.busyAfter[last].end = now }
                lastDone = max(lastDone, now)
                doneSent += 1
            }
            if dueHead > 65_536 && dueHead * 2 > due.count { due.removeFirst(dueHead); dueHead = 0 }
            // Heartbeats from idle workers, so none is declared dead while it waits.
            if now >= nextHeartbeats {
                for (k, w) in sims.enumerated() where !w.finished && now - w.lastSent >= timing.heartbeat {
                    try? w.socket.send(WireMessage(.heartbeat, header: WireMessage.emptyHeader).frames, dontWait: true)
                    w.lastSent = now
                    if !w.recheck { w.recheck = true; recheck.append(k) }
                }
                nextHeartbeats = now + min(0.1, timing.heartbeat / 4)
            }
            if now >= nextProgress {
                let welcomed = sims.filter { $0.welcomedAt != nil }.count
                progress(String(format: "%.1f s: %d of %d welcomed, %d of %d jobs done", now - start, welcomed, n, doneSent, total))
                nextProgress = now + 2
            }
        }
        let simulatorCPU = processCPUSeconds() - cpuStart
        for w in sims { try? w.socket.send(WireMessage(.bye, ByeHeader(code: .leaving, reason: "swarm finished")).frames, dontWait: true) }

        // The coordinator leaves one heartbeat after completion; its rusage comes with the reaping.
        var status: Int32 = 0
        var usage = rusage()
        let reapDeadline = monotonicSeconds() + 30
        while wait4(coordinator.pid, &status, WNOHANG, &usage) == 0 {
            if monotonicSeconds() > reapDeadline { kill(coordinator.pid, SIGTERM) }
            usleep(20_000)
        }
        reaped = true
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6

        // Busy time per worker over the whole span, and after the last worker's first JOB.
        let span = max(1e-9, lastDone - firstJob)
        let joined = sims.compactMap(\.firstJobAt).max() ?? firstJob
        var busy = 0.0, busyAfter = 0.0
        for w in sims {
            for b in w.busyAfter where b.end.isFinite {
                busy += b.end - b.start
                busyAfter += max(0, b.end - max(b.start, joined))
            }
        }
        let welcomes = sims.compactMap { w in w.welcomedAt.map { $0 - w.connectedAt } }
        sims.removeAll()

        let store = try SweepStore(stateDir: state, readOnly: true)
        let rows = try store.jobs()
        let attempts = try store.attempts()
        var perJob: [String: Int] = [:]
        for a in attempts { perJob[a.job, default: 0] += 1 }
        let storeDone = rows.filter { $0.state == .done }.count
        let single = rows.filter { perJob[$0.id] == 1 }.count
        return Report(workers: n, jobs: total, jobSeconds: settings.jobSeconds,
                      efficiency: busy / (Double(n) * span),
                      efficiencyAfterRampUp: lastDone > joined ? busyAfter / (Double(n) * (lastDone - joined)) : 0,
                      rampUpSeconds: joined - firstJob, spanSeconds: span,
                      jobsPerSecond: Double(doneSent) / span,
                      welcomeMedian: quantile(welcomes, 0.5), welcomeP99: quantile(welcomes, 0.99), welcomeMax: welcomes.max() ?? 0,
                      welcomedLate: welcomes.filter { $0 > 1 }.count, welcomed: welcomes.count,
                      gapMedian: quantile(gaps, 0.5), gapP99: quantile(gaps, 0.99),
                      coordinatorCPUSeconds: cpu, coordinatorPeakRSSBytes: Int(usage.ru_maxrss) * 1024,
                      simulatorCPUSeconds: simulatorCPU, simulatorLateP99: quantile(late, 0.99),
                      storeDone: storeDone, storeSingleAttempt: single, storeAttempts: attempts.count, duplicateJobs: duplicates)
    }

    /// epoll, level-triggered, over descriptors tagged with a number. The Glibc module does not
    /// export <sys/epoll.h>, so its three calls are looked up in the C library at run time.
    final class Epoll {
        typealias Create = @convention(c) (Int32) -> Int32
        typealias Control = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
        typealias Wait = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
        #if arch(x86_64)
        /// `struct epoll_event` is packed on x86-64: u32 events, then u64 data at offset 4.
        static let eventSize = 12, dataOffset = 4
        #else
        static let eventSize = 16, dataOffset = 8
        #endif
        let fd: Int32
        let control: Control
        let waitCall: Wait
        var buffer = [UInt8](repeating: 0, count: 1024 * Epoll.eventSize)

        init() throws {
            let lib = dlopen(nil, RTLD_NOW)
            guard let c = dlsym(lib, "epoll_create1"), let ctl = dlsym(lib, "epoll_ctl"), let w = dlsym(lib, "epoll_wait") else {
                throw SweepError.io("epoll is not available")
            }
            control = unsafeBitCast(ctl, to: Control.self)
            waitCall = unsafeBitCast(w, to: Wait.self)
            fd = unsafeBitCast(c, to: Create.self)(0)
            guard fd >= 0 else { throw SweepError.io("epoll_create1: \(String(cString: strerror(errno)))") }
        }

        deinit { close(fd) }

        /// Watches `descriptor` for input (EPOLLIN), reporting `tag` when it is readable.
        func add(_ descriptor: Int32, tag: UInt32) throws {
            var event = [UInt8](repeating: 0, count: Epoll.eventSize)
            event.withUnsafeMutableBytes { b in
                b.storeBytes(of: UInt32(1), toByteOffset: 0, as: UInt32.self)  // EPOLLIN
                b.storeBytes(of: UInt64(tag), toByteOffset: Epoll.dataOffset, as: UInt64.self)
            }
            let rc = event.withUnsafeMutableBytes { control(fd, 1 /* EPOLL_CTL_ADD */, descriptor, $0.baseAddress) }
            guard rc == 0 else { throw SweepError.io("epoll_ctl: \(String(cString: strerror(errno)))") }
        }

        /// Waits up to `timeoutMs` and calls `ready` with the tag of each readable descriptor.
        func wait(timeoutMs: Int, _ ready: (UInt32) -> Void) throws {
            let n = buffer.withUnsafeMutableBytes { waitCall(fd, $0.baseAddress, 1024, Int32(timeoutMs)) }
            if n < 0 {
                if errno == EINTR { return }
                throw SweepError.io("epoll_wait: \(String(cString: strerror(errno)))")
            }
            buffer.withUnsafeBytes { b in
                for i in 0 ..< Int(n) { ready(UInt32(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: i * Epoll.eventSize + Epoll.dataOffset, as: UInt64.self))) }
            }
        }
    }

    /// One table row of `report`, under the header `bench coordinator --simulated-workers` prints.
    public static func row(_ r: Report) -> String {
        String(format: "%8d | %5d | %17.1f%% | %9.1f%% | %9.2f | %6.0f | %7.0f / %5.0f / %5.0f | %4d | %9.2f / %7.2f | %11.2f | %13.0f | ",
               r.workers, r.jobs, r.efficiency * 100, r.efficiencyAfterRampUp * 100, r.rampUpSeconds, r.jobsPerSecond,
               r.welcomeMedian * 1000, r.welcomeP99 * 1000, r.welcomeMax * 1000, r.welcomedLate, r.gapMedian * 1000, r.gapP99 * 1000,
               r.coordinatorCPUSeconds, Double(r.coordinatorPeakRSSBytes) / 1_048_576) + (r.exactlyOnce ? "yes" : "NO")
    }

    /// The `q` quantile of `values` (nearest rank); 0 when empty.
    public static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
    }

    /// A port the kernel just gave out on 127.0.0.1 (closed again for the coordinator to bind).
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SweepError.io("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw SweepError.io("cannot find a free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits until something accepts TCP connections on `port` (the coordinator has bound).
    static func waitForListener(port: Int, coordinator: SpawnedChild, log: String) throws {
        let end = monotonicSeconds() + 60
        while monotonicSeconds() < end {
            if coordinator.exitIfEnded() != nil {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw SweepError.io("the coordinator did not start: \(text.split(separator: "\n").last ?? "see \(log)")")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return }
            usleep(20_000)
        }
        throw SweepError.io("the coordinator did not listen on port \(port) within 60 s")
    }

    /// Raises the soft descriptor limit towards the hard one (and the hard one too where the
    /// process may: root, CAP_SYS_RESOURCE): each simulated worker holds a TCP connection and a
    /// libzmq mailbox, and the coordinator child inherits the limit. Returns the soft limit in
    /// effect afterwards.
    static func raiseDescriptorLimit(needed: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_max < rlim_t(needed) {
            var raised = limit
            (raised.rlim_cur, raised.rlim_max) = (rlim_t(needed), rlim_t(needed))
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        if limit.rlim_cur < rlim_t(needed) {
            limit.rlim_cur = min(limit.rlim_max, rlim_t(needed))
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}
