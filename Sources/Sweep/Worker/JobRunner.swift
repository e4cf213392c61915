import Basics
import CSupport
import CZeroMQ
import Foundation

/// Lets the worker's socket thread cancel a job running on another thread or in a child.
/// A child gets SIGTERM, and SIGKILL `killGrace` seconds later if it has not been reaped by then
/// (a job hung hard enough to be timed out may well ignore SIGTERM).
final class JobControl: @unchecked Sendable {
    static let killGrace = 2.0
    private let lock = NSLock()
    private var _cancelled = false
    private var pid: Int32 = 0
    private var reaped = false

    var cancelled: Bool { lock.lock(); defer { lock.unlock() }; return _cancelled }

    func setChild(_ p: Int32) { lock.lock(); pid = p; reaped = false; lock.unlock() }

    /// The job thread calls this as soon as waitpid returned: the pid may be reused from now on.
    func childReaped() { lock.lock(); reaped = true; lock.unlock() }

    func cancel() {
        lock.lock()
        _cancelled = true
        let p = reaped ? 0 : pid
        lock.unlock()
        guard p > 0 else { return }
        kill(p, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + JobControl.killGrace) { [self] in
            lock.lock()
            defer { lock.unlock() }
            if !reaped && pid == p {
                Log.warn("job process \(p) still running \(JobControl.killGrace)s after SIGTERM: SIGKILL")
                kill(p, SIGKILL)
            }
        }
    }
}

/// An output file of a finished job, hashed on the job thread (not the socket thread).
struct JobOutput: Codable, Sendable {
    var file: String
    var path: String
    var hash: String
    var size: Int64
}

/// Runs one job off the socket thread and reports back over an inproc PUSH socket (the socket
/// thread polls the PULL end): `[event, job, attempt, payload...]` with event `progress`
/// (ProgressHeader JSON), `done` (result JSON, outputs JSON, seconds) or `failed` (reason).
enum JobRunner {
    static let eventsEndpoint = "inproc://worker-job-events"

    struct Setup: Sendable {
        var ref: JobRef
        var kind: String
        var spec: [UInt8]
        var inputs: [InputRef]
        var cacheDir: String
        var executable: String
        var threads: Int
        var inChild: Bool
        /// The child writes checkpoints into `<work>/checkpoints/` (train and fine-tune jobs in a sweep).
        var checkpoints = false
    }

    static func start(_ s: Setup, context: ZMQContext, control: JobControl) {
        let t = Thread {
            guard let push = try? ZMQSocket(context, .push) else { return }
            guard (try? push.connect(eventsEndpoint)) != nil else { return }
            let started = monotonicSeconds()
            func post(_ event: String, _ payload: [[UInt8]]) {
                try? push.send([Array(event.utf8), Array(s.ref.job.utf8), Array(String(s.ref.attempt).utf8)] + payload)
            }
            do {
                if s.inChild {
                    let (result, outputs) = try runChild(s, control: control) { post("progress", [$0]) }
                    if control.cancelled { return }
                    post("done", [result, Array(try JSONEncoder().encode(outputs)), Array(String(monotonicSeconds() - started).utf8)])
                } else {
                    try runInProcess(s, control: control)
                    if control.cancelled { return }
                    post("done", [Array("{\"slept\":true}".utf8), Array("[]".utf8), Array(String(monotonicSeconds() - started).utf8)])
                }
            } catch {
                // An input error fails the job for good; anything else may pass on another try.
                if !control.cancelled { post("failed", [Array("\(error)".utf8)] + (error is JobInputError ? [Array("permanent".utf8)] : [])) }
            }
        }
        t.name = "job \(s.ref.job)"
        t.start()
    }

    /// `sleep` in a worker thread, in small steps so a cancel is noticed.
    static func runInProcess(_ s: Setup, control: JobControl) throws {
        let spec = try JSONDecoder().decode(SleepSpec.self, from: Data(s.spec))
        let end = monotonicSeconds() + spec.seconds
        while monotonicSeconds() < end && !control.cancelled { usleep(UInt32(min(0.02, max(0, end - monotonicSeconds())) * 1e6)) }
    }

    /// Runs `ranksweep exec-job` in a child process: a crash or OOM there is a FAILED result with
    /// the reason, and the worker carries on.
    static func runChild(_ s: Setup, control: JobControl, progress: ([UInt8]) -> Void) throws -> ([UInt8], [JobOutput]) {
        let artifacts = try ArtifactStore(dir: s.cacheDir + "/artifacts")
        let work = s.cacheDir + "/jobs/\(s.ref.job)-a\(s.ref.attempt)-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        let inputsDir = work + "/inputs", outDir = work + "/out"
        try AtomicFile.makeDirectory(inputsDir)
        try AtomicFile.makeDirectory(outDir)
        for input in s.inputs {
            var target = artifacts.path(input.hash)
            if input.unpack { target = try unpacked(input.hash, cacheDir: s.cacheDir, artifacts: artifacts) }
            guard input.name.range(of: "/") == nil, !input.name.hasPrefix(".") else { throw SweepError.invalid("bad input name \(input.name)") }
            try FileManager.default.createSymbolicLink(atPath: inputsDir + "/" + input.name, withDestinationPath: target)
        }
        let specPath = work + "/spec.json"
        try AtomicFile.write(Data(s.spec), to: specPath)
        let stderrPath = work + "/stderr.log"
        FileManager.default.createFile(atPath: stderrPath, contents: nil)

        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = String(s.threads)
        env["RANKSWEEP_JOB"] = "\(s.ref.job)#\(s.ref.attempt)"
        var arguments = ["exec-job", "--kind", s.kind, "--spec", specPath, "--inputs", inputsDir, "--out", outDir]
        if s.checkpoints {
            try AtomicFile.makeDirectory(work + "/checkpoints")
            arguments += ["--checkpoints", work + "/checkpoints"]
        }
        let child = try SpawnedChild(path: s.executable, arguments: arguments,
                                     environment: env, stderrPath: stderrPath)
        control.setChild(child.pid)
        if control.cancelled { kill(child.pid, SIGTERM) }

        // Forward `PROGRESS {json}` lines as they come; the rest of stdout is the job's business.
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(child.stdoutFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buffer.append(contentsOf: chunk[..<n])
            while let nl = buffer.firstIndex(of: 10) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                let prefix = Array("PROGRESS ".utf8)
                if line.starts(with: prefix) { progress(Array(line.dropFirst(prefix.count))) }
            }
        }
        close(child.stdoutFD)
        let status = child.wait()
        control.childReaped()
        let lastErr = lastLine(stderrPath)
        if let sig = status.signal {
            throw SweepError.io("job process killed by signal \(sig) (\(signalName(sig)))" + (lastErr.map { ": \($0)" } ?? ""))
        }
        if status.code == ExecJob.inputErrorStatus, let message = lastErr {
            throw JobInputError(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message)
        }
        guard status.code == 0 else {
            throw SweepError.io("job process exited with status \(status.code)" + (lastErr.map { ": \($0)" } ?? ""))
        }
        guard let result = FileManager.default.contents(atPath: outDir + "/" + JobFiles.result) else {
            throw SweepError.io("job process wrote no \(JobFiles.result)")
        }
        var outputs: [JobOutput] = []
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []).sorted() where file != JobFiles.result && !file.hasPrefix(".") {
            let path = outDir + "/" + file
            guard !Files.isDirectory(path) else { continue }
            let (hash, size) = try SHA256Hasher.file(path)
            outputs.append(JobOutput(file: file, path: path, hash: hash, size: size))
        }
        return (Array(result), outputs)
    }

    /// Unpacks a directory archive once per cache (`AtomicFile.writeDirectory`: never half there).
    static func unpacked(_ hash: String, cacheDir: String, artifacts: ArtifactStore) throws -> String {
        let dir = cacheDir + "/unpacked/" + hash
        if Files.isDirectory(dir) { return dir }
        // Another job may unpack the same archive at the same time: whoever renames first wins.
        try AtomicFile.writeDirectory(at: dir) { try DirectoryArchive.unpack(archive: artifacts.path(hash), to: $0) }
        return dir
    }

    /// The job's last stderr line before any Swift crash backtrace (which stays in stderr.log).
    static func lastLine(_ path: String) -> String? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        var lines = String(decoding: d.suffix(64 * 1024), as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        if let crash = lines.firstIndex(where: { $0.contains("Program crashed:") || $0.hasPrefix("*** Signal") }) { lines = Array(lines[..<crash]) }
        return lines.last(where: { !$0.isEmpty }).map { String($0.prefix(500)) }
    }

    static func signalName(_ s: Int32) -> String {
        [6: "SIGABRT", 9: "SIGKILL (out of memory?)", 11: "SIGSEGV", 15: "SIGTERM", 4: "SIGILL", 7: "SIGBUS", 8: "SIGFPE"][s] ?? "signal"
    }
}

