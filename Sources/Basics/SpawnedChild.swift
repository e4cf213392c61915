import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child that could not be started (its stderr file, or the executable).
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A child process started with posix_spawn and reaped with waitpid: the one way ranksweep starts
/// another process (job children, local workers, the report hook, the benchmarks' peers).
///
/// Not Foundation's `Process`: on Linux it learns of a child's exit through a socket the child
/// inherits and a run loop on the waiting thread, and in the cluster/netns test it now and then never
/// noticed an exit (`waitUntilExit` blocked forever with the child already gone), leaving the job
/// "running" on a live worker for good. waitpid on the pid cannot miss the exit. See
/// `csupport_spawn` for what the child gets (no descriptor but stdin/stdout/stderr, default signals).
public struct SpawnedChild: Sendable {
    public let pid: Int32
    /// The read end of the child's stdout (the caller closes it), or -1 when stdout shares stderr's file.
    public let stdoutFD: Int32

    /// Starts `path`. With `stdoutToStderrFile`, stdout goes into the stderr file too (nothing to drain).
    public init(path: String, arguments: [String], environment: [String: String], stderrPath: String, stdoutToStderrFile: Bool = false) throws {
        let errFD = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard errFD >= 0 else { throw SpawnError("cannot open \(stderrPath): \(String(cString: strerror(errno)))") }
        defer { close(errFD) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var fd: Int32 = -1, pid: Int32 = 0
        let rc = stdoutToStderrFile ? csupport_spawn(path, argv, envp, errFD, nil, &pid) : csupport_spawn(path, argv, envp, errFD, &fd, &pid)
        guard rc == 0 else { throw SpawnError("cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
        stdoutFD = fd
    }

    /// Blocks until the child exits: its exit code, or the signal that ended it.
    public func wait() -> (code: Int32, signal: Int32?) {
        var code: Int32 = -1, sig: Int32 = 0
        guard csupport_wait_child(pid, &code, &sig) == 0 else { return (-1, nil) }
        return (code, sig == 0 ? nil : sig)
    }

    /// The child's end when it has exited (then it is reaped: call once), nil while it runs.
    public func exitIfEnded() -> (code: Int32, signal: Int32?)? {
        var code: Int32 = -1, sig: Int32 = 0
        switch csupport_try_wait_child(pid, &code, &sig) {
        case 1: return (code, sig == 0 ? nil : sig)
        case 0: return nil
        default: return (-1, nil)
        }
    }

    /// Sends SIGTERM.
    public func terminate() { kill(pid, SIGTERM) }
}

extension SpawnedChild {
    /// Runs `path` to its end and returns its stdout; its stderr goes to a temporary file whose
    /// text comes back too. For short helper programs (the benchmarks' peers).
    public static func capture(path: String, arguments: [String], environment: [String: String]) throws
        -> (stdout: String, stderr: String, code: Int32, signal: Int32?) {
        let errPath = NSTemporaryDirectory() + "ranksweep-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
        defer { unlink(errPath) }
        let child = try SpawnedChild(path: path, arguments: arguments, environment: environment, stderrPath: errPath)
        // stderr goes to a file, so reading stdout to its end cannot deadlock on a full pipe.
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(child.stdoutFD, $0.baseAddress, $0.count) }
            if n > 0 { output += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(child.stdoutFD)
        let end = child.wait()
        let errText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (String(decoding: output, as: UTF8.self), errText, end.code, end.signal)
    }
}
