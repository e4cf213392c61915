import Foundation
import XCTest

/// `cluster/`: the multi-host fault test in network namespaces (`cluster/netns/run.sh`, needs root,
/// which CI is) and the ssh launcher's dry run.
final class NetnsClusterTests: XCTestCase {
    static let clusterDir = Harness.root + "/cluster"

    /// Runs a script with bash; output (stdout + stderr) into a file, returned with the exit status.
    func runScript(_ args: [String], log: String, timeout: Double, env: [String: String] = ProcessInfo.processInfo.environment)
        throws -> (status: Int32?, output: String) {
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = args
        p.environment = env
        let fh = FileHandle(forWritingAtPath: log)
        p.standardOutput = fh
        p.standardError = fh
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let end = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < end { usleep(100_000) }
        var status: Int32? = nil
        if p.isRunning {
            p.terminate()  // SIGTERM: the script tears its namespaces down in its trap
            let grace = Date().addingTimeInterval(10)
            while p.isRunning && Date() < grace { usleep(100_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        } else {
            status = p.terminationStatus
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    func testNetnsMultiHostSweepSurvivesFaults() throws {
        guard getuid() == 0 else {
            XCTFail("NetnsClusterTests needs root: cluster/netns/run.sh creates network namespaces, veth pairs and a bridge. "
                    + "Run the suite as root (CI does), e.g. sudo make test.")
            return
        }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Harness.binary), "build first: \(Harness.binary)")
        let dir = Harness.tempDir("netns")
        // A clean environment for the script: it sets its own heartbeat timings.
        var env = ProcessInfo.processInfo.environment
        for k in ["RANKSWEEP_HEARTBEAT_MS", "RANKSWEEP_LIVENESS", "RANKSWEEP_RECONNECT_MAX_MS"] { env[k] = nil }
        let started = Date()
        let (status, out) = try runScript([Self.clusterDir + "/netns/run.sh", "--binary", Harness.binary, "--workdir", dir + "/work",
                                           "--limit", "240"], log: dir + "/run.log", timeout: 270, env: env)
        let seconds = Date().timeIntervalSince(started)
        let summary = out.split(separator: "\n").first { $0.hasPrefix("netns summary:") }.map(String.init)
        print("netns test took \(String(format: "%.1f", seconds)) s; \(summary ?? "no summary line")")
        XCTAssertEqual(status, 0, "cluster/netns/run.sh failed (log \(dir)/run.log):\n" + String(out.suffix(6000)))
        let line = try XCTUnwrap(summary, "no summary line:\n" + String(out.suffix(4000)))
        XCTAssertTrue(line.contains("survived 5/5"), line)
        XCTAssertTrue(line.contains("worker-kill ok") && line.contains("link-down ok") && line.contains("coordinator-kill ok")
                      && line.contains("wrong-key ok"), line)
        XCTAssertTrue(line.contains("exactly once"), line)
        XCTAssertTrue(line.contains("results equal undisturbed run: yes"), line)
        if out.contains("NETEM UNAVAILABLE") {
            XCTAssertTrue(line.contains("NO-NETEM"), "a substitute for netem must be named in the summary: \(line)")
        }
        // Nothing of the test network is left behind.
        let ns = try runScript(["-c", "ip netns list"], log: dir + "/ns.log", timeout: 10)
        XCTAssertFalse(ns.output.contains("rsnt-"), "namespaces left behind: \(ns.output)")
        if status == 0 { try? FileManager.default.removeItem(atPath: dir) }
    }

    func testLaunchDryRunPrintsEveryCommandAndChangesNothing() throws {
        let dir = Harness.tempDir("launch")
        let hosts = dir + "/my.hosts"
        Harness.write("""
            # test hosts
            COORDINATOR_ENDPOINT=tcp://coord.test:5555
            BIND=tcp://0.0.0.0:5555
            SWEEP=sweep.yaml
            STATE_DIR=\(dir)/state
            KEYS=\(dir)/keys
            LOG_DIR=\(dir)/logs
            BIN=/opt/rs/ranksweep
            SSH_OPTS=-o BatchMode=yes -o Port=2222
            worker node1.test slots=2 threads=4   # comment
            worker bob@node2.test name=second bin=/usr/local/bin/ranksweep coretype=Haswell
            """, hosts)
        let launch = Self.clusterDir + "/launch.sh"

        let start = try runScript([launch, "--hosts", hosts, "--dry-run", "start"], log: dir + "/start.log", timeout: 30)
        XCTAssertEqual(start.status, 0, start.output)
        let o = start.output
        for needle in [
            "+ /opt/rs/ranksweep keygen --out \(dir)/keys --name coordinator",
            "+ /opt/rs/ranksweep keygen --out \(dir)/keys/hosts --name node1",
            "+ /opt/rs/ranksweep keygen --out \(dir)/keys/hosts --name second",
            "+ cp \(dir)/keys/hosts/second.pub \(dir)/keys/workers/second.pub",
            "nohup /opt/rs/ranksweep coordinator --bind tcp://0.0.0.0:5555 --state-dir \(dir)/state --keys \(dir)/keys --progress plain --sweep sweep.yaml",
            "+ scp -q -o BatchMode=yes -o Port=2222 \(dir)/keys/hosts/node1.key \(dir)/keys/hosts/node1.pub \(dir)/keys/coordinator.pub node1.test:.ranksweep/keys/",
            "+ ssh -o BatchMode=yes -o Port=2222 bob@node2.test",
            "worker --connect tcp://coord.test:5555 --name node1 --key .ranksweep/keys/node1.key --server-key .ranksweep/keys/coordinator.pub --slots 2 --cache-dir .ranksweep/cache --threads 4",
            "OPENBLAS_CORETYPE=Haswell nohup",
            "command -v /usr/local/bin/ranksweep",
            "--name second --key .ranksweep/keys/second.key",
        ] {
            XCTAssertTrue(o.contains(needle), "dry run lacks \"\(needle)\":\n\(o)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/keys"), "a dry run makes no keys")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/state"), "a dry run makes no state dir")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/logs"), "a dry run makes no log dir")

        let stop = try runScript([launch, "--hosts", hosts, "-n", "stop"], log: dir + "/stop.log", timeout: 30)
        XCTAssertEqual(stop.status, 0, stop.output)
        XCTAssertTrue(stop.output.contains("kill -TERM $(cat .ranksweep/worker.pid)"), stop.output)
        XCTAssertTrue(stop.output.contains("kill -TERM $(cat \(dir)/logs/coordinator.pid)"), stop.output)
        XCTAssertTrue(stop.output.contains("+ scp -q -o BatchMode=yes -o Port=2222 bob@node2.test:.ranksweep/worker.log \(dir)/logs/worker-second.log"),
                      stop.output)

        let status = try runScript([launch, "--hosts", hosts, "--dry-run", "status"], log: dir + "/status.log", timeout: 30)
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("+ /opt/rs/ranksweep status --state-dir \(dir)/state"), status.output)

        // Bad input: a one-line error naming the file and line, exit 2.
        Harness.write("COORDINATOR_ENDPOINT=tcp://x:1\nSTATE_DIR=s\nworker h1 slots=zero\n", dir + "/bad.hosts")
        let bad = try runScript([launch, "--hosts", dir + "/bad.hosts", "-n", "start"], log: dir + "/bad.log", timeout: 30)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("bad.hosts:3: slots must be a positive integer"), bad.output)
        let noVerb = try runScript([launch, "--hosts", hosts], log: dir + "/noverb.log", timeout: 30)
        XCTAssertEqual(noVerb.status, 2, noVerb.output)
    }
}
