import Basics
import Foundation
import TestSupport
import XCTest
@testable import Sweep

/// `cluster/`: the multi-host fault test in network namespaces (`cluster/netns/run.sh`, needs root,
/// which CI is) and the ssh launcher's dry run.
final class NetnsClusterTests: XCTestCase {
    static let clusterDir = Harness.root + "/cluster"

    /// Runs a script with bash; output (stdout + stderr) into a file, returned with the exit status.
    func runScript(_ args: [String], log: String, timeout: Double, env: [String: String] = ProcessInfo.processInfo.environment)
        throws -> (status: Int32?, output: String) {
        let p = try TestChild("/bin/bash", args, environment: env, log: log)
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
                                           "--limit", String(Int(TestLoad.seconds(240)))], log: dir + "/run.log",
                                          timeout: TestLoad.seconds(270), env: env)
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
        // The budget sweep's jobs (4 seeds x 10 layers, one allocation per seed) all came through the faults.
        XCTAssertTrue(line.contains("budget: 40 sensitivity and 4 allocation jobs done"), line)
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

    /// The Slurm batch script with a stand-in `srun` (one task per "node", run here, signals passed
    /// on as srun does), in a network namespace of its own with only loopback: a first allocation is
    /// stopped by SIGTERM mid-sweep (preemption), the requeued one resumes the same state dir.
    func testSlurmBatchScriptRunsAndIsRequeueSafe() throws {
        guard getuid() == 0 else {
            XCTFail("testSlurmBatchScriptRunsAndIsRequeueSafe needs root: it runs the batch script in a network namespace of its own")
            return
        }
        let dir = Harness.tempDir("slurm")
        Harness.write("""
            #!/bin/bash
            # stand-in srun for tests: --nodes=N tasks of the command, here; SIGTERM passed on to them
            n=1
            while [[ $# -gt 0 && $1 == --* ]]; do case $1 in --nodes=*) n=${1#--nodes=};; esac; shift; done
            pids=()
            for _ in $(seq "$n"); do "$@" & pids+=($!); done
            trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM INT
            while ! wait; do :; done
            """, dir + "/bin/srun")
        chmod(dir + "/bin/srun", 0o755)
        Harness.write("noop: 300\nsleep: {count: 12, seconds: 0.5}\n", dir + "/sweep.yaml")
        let ns = "rsslurm-\(getpid())"
        defer { _ = try? runScript(["-c", "ip netns del \(ns)"], log: dir + "/nsdel.log", timeout: 10) }
        XCTAssertEqual(try runScript(["-c", "ip netns add \(ns) && ip -n \(ns) link set lo up"], log: dir + "/ns.log", timeout: 10).status, 0)
        let state = dir + "/state"
        func sbatch(_ restart: Int, log: String) throws -> TestChild {
            try TestChild("/usr/sbin/ip", ["netns", "exec", ns, "env", "PATH=\(dir)/bin:/usr/bin:/bin", "RANKSWEEP_BIN=\(Harness.binary)",
                           "RANKSWEEP_COORDINATOR_ADDR=127.0.0.1", "RANKSWEEP_PORT=\(Harness.freePort())", "SLURM_JOB_NUM_NODES=2",
                           "SLURM_JOB_ID=4242", "SLURM_RESTART_COUNT=\(restart)", "SLURM_CPUS_ON_NODE=2", "RANKSWEEP_HEARTBEAT_MS=100",
                           "RANKSWEEP_LIVENESS=5", "RANKSWEEP_NO_REEXEC=1", "TMPDIR=\(dir)",
                           "bash", Self.clusterDir + "/slurm/ranksweep.sbatch", dir + "/sweep.yaml", state],
                          environment: ProcessInfo.processInfo.environment, log: log)
        }
        let results = { (try? SweepStore(stateDir: state, readOnly: true).count("SELECT COUNT(*) FROM results WHERE job LIKE 'sleep-%'")) ?? 0 }

        // First allocation: preempted (SIGTERM to the batch script) once a few sleep jobs are done.
        let first = try sbatch(0, log: dir + "/job1.out")
        eventually(30, "a few sleep results") { results() >= 2 || !first.isRunning }
        XCTAssertTrue(first.isRunning, (try? String(contentsOfFile: dir + "/job1.out", encoding: .utf8)) ?? "")
        kill(first.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(30)
        while first.isRunning && Date() < end { usleep(50_000) }
        XCTAssertFalse(first.isRunning, "batch script stops on SIGTERM")
        if first.isRunning { kill(first.processIdentifier, SIGKILL) }
        first.waitUntilExit()
        XCTAssertNotEqual(first.terminationStatus, 0, "interrupted, not complete")
        let done1 = results()
        XCTAssertLessThan(done1, 12, "stopped mid-sweep")
        let pub = try String(contentsOfFile: state + "/keys/coordinator.pub", encoding: .utf8)

        // Requeued: same state dir, resumes and completes; keys reused.
        let second = try sbatch(1, log: dir + "/job2.out")
        let end2 = Date().addingTimeInterval(60)
        while second.isRunning && Date() < end2 { usleep(50_000) }
        if second.isRunning { kill(second.processIdentifier, SIGKILL) }
        second.waitUntilExit()
        let out2 = (try? String(contentsOfFile: dir + "/job2.out", encoding: .utf8)) ?? ""
        XCTAssertEqual(second.terminationStatus, 0, out2)
        XCTAssertTrue(out2.contains("restart 1") && out2.contains("312 jobs — 312 done") && out2.contains("coordinator exited 0"), out2)
        let store = try SweepStore(stateDir: state, readOnly: true)
        XCTAssertEqual(try store.count("SELECT COUNT(*) FROM results"), 312)
        XCTAssertEqual(try store.count("SELECT COUNT(*) FROM (SELECT job FROM events WHERE kind = 'done' GROUP BY job HAVING COUNT(*) > 1)"), 0)
        XCTAssertEqual(try String(contentsOfFile: state + "/keys/coordinator.pub", encoding: .utf8), pub, "keys reused after a requeue")
        let coordLog = (try? String(contentsOfFile: state + "/logs/coordinator.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(coordLog.contains("resuming"), coordLog)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The Slurm job-array recipe, its two scripts run here as Slurm would (loopback only): two array
    /// tasks start before the coordinator job listens, wait for its endpoint file, join, and the
    /// sweep completes on both; the coordinator job exits 0 and removes the endpoint.
    func testSlurmArrayWorkersJoinTheCoordinatorJob() throws {
        let dir = Harness.tempDir("slurmarray")
        Harness.write("noop: 80\nsleep: {count: 4, seconds: 0.2}\n", dir + "/sweep.yaml")
        let state = dir + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let port = Harness.freePort()
        func job(_ script: String, _ args: [String], _ env: [String], log: String) throws -> TestChild {
            try TestChild("/usr/bin/env", ["PATH=/usr/bin:/bin", "RANKSWEEP_BIN=\(Harness.binary)", "RANKSWEEP_COORDINATOR_ADDR=127.0.0.1",
                           "RANKSWEEP_BIND_ADDR=127.0.0.1", "RANKSWEEP_PORT=\(port)", "SLURM_CPUS_ON_NODE=2", "RANKSWEEP_HEARTBEAT_MS=100",
                           "RANKSWEEP_LIVENESS=5", "RANKSWEEP_NO_REEXEC=1", "TMPDIR=\(dir)"] + env
                + ["bash", Self.clusterDir + "/slurm/" + script] + args,
                          environment: ProcessInfo.processInfo.environment, log: log)
        }
        let workers = try (0 ..< 2).map { task in
            try job("ranksweep-workers.sbatch", [state], ["SLURM_ARRAY_JOB_ID=77", "SLURM_ARRAY_TASK_ID=\(task)"], log: dir + "/worker-\(task).out")
        }
        let coordinator = try job("ranksweep-coordinator.sbatch", [dir + "/sweep.yaml", state], ["SLURM_JOB_ID=76"], log: dir + "/coordinator.out")
        let end = Date().addingTimeInterval(90)
        while (coordinator.isRunning || workers.contains(where: \.isRunning)) && Date() < end { usleep(50_000) }
        for p in [coordinator] + workers where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        coordinator.waitUntilExit()
        let out = (try? String(contentsOfFile: dir + "/coordinator.out", encoding: .utf8)) ?? ""
        XCTAssertEqual(coordinator.terminationStatus, 0, out)
        XCTAssertTrue(out.contains("84 jobs — 84 done") && out.contains("coordinator exited 0"), out)
        for (task, w) in workers.enumerated() {
            w.waitUntilExit()
            let log = (try? String(contentsOfFile: dir + "/worker-\(task).out", encoding: .utf8)) ?? ""
            XCTAssertEqual(w.terminationStatus, 0, "array task \(task) leaves on the coordinator's BYE: \(log)")
            XCTAssertTrue(log.contains("joining tcp://127.0.0.1:\(port)"), log)
        }
        let results = try SweepStore(stateDir: state, readOnly: true).results()
        XCTAssertEqual(results.count, 84)
        XCTAssertEqual(Set(results.map { $0.worker.hasPrefix("array0-") ? 0 : $0.worker.hasPrefix("array1-") ? 1 : -1 }), [0, 1],
                       "both array tasks took jobs: \(Set(results.map(\.worker)))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/coordinator.endpoint"), "the endpoint goes with the coordinator")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// launch.sh for real, with stand-in `ssh`/`scp` that run on this machine, each "host" a home
    /// directory of its own: keys made and copied, coordinator and workers started, the sweep done,
    /// status, stop, logs gathered. Loopback only.
    func testLaunchStartStatusStopWithLocalSSH() throws {
        let dir = Harness.tempDir("launchreal")
        writeStandInSSH(dir)
        let port = Harness.freePort()
        Harness.write("noop: 100\nsleep: {count: 4, seconds: 0.3}\n", dir + "/sweep.yaml")
        Harness.write("""
            COORDINATOR_ENDPOINT=tcp://127.0.0.1:\(port)
            BIND=tcp://127.0.0.1:\(port)
            SWEEP=\(dir)/sweep.yaml
            STATE_DIR=\(dir)/state
            KEYS=\(dir)/keys
            LOG_DIR=\(dir)/logs
            BIN=\(Harness.binary)
            worker node1.test bin=\(Harness.binary) threads=1
            worker carol@node2.test name=second slots=2 threads=1 bin=\(Harness.binary)
            """, dir + "/my.hosts")
        var env = Harness.env
        env["PATH"] = dir + "/bin:" + (env["PATH"] ?? "/usr/bin:/bin")
        env["FAKE_HOSTS"] = dir + "/hosts"
        let launch = Self.clusterDir + "/launch.sh"
        let start = try runScript([launch, "--hosts", dir + "/my.hosts", "start"], log: dir + "/start.log", timeout: 60, env: env)
        XCTAssertEqual(start.status, 0, start.output)
        XCTAssertTrue(start.output.contains("node1: worker started") && start.output.contains("second: worker started"), start.output)
        for f in ["keys/coordinator.key", "keys/workers/node1.pub", "keys/workers/second.pub",
                  "hosts/node1.test/.ranksweep/keys/node1.key", "hosts/node2.test/.ranksweep/keys/second.key",
                  "hosts/node2.test/.ranksweep/keys/coordinator.pub"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), "missing \(f)")
        }
        let mode = (try FileManager.default.attributesOfItem(atPath: dir + "/hosts/node1.test/.ranksweep/keys/node1.key")[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600, "the worker's secret key stays private on its host")
        let done = { (try? SweepStore(stateDir: dir + "/state", readOnly: true).count("SELECT COUNT(*) FROM results")) ?? 0 }
        eventually(60, "sweep done") { done() == 104 }
        let coordLog = (try? String(contentsOfFile: dir + "/logs/coordinator.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(coordLog.contains("CURVE"), coordLog)
        XCTAssertEqual((try? SweepStore(stateDir: dir + "/state", readOnly: true).count("SELECT COUNT(DISTINCT worker) FROM results")) ?? 0, 2,
                       "both hosts' workers took jobs")
        let status = try runScript([launch, "--hosts", dir + "/my.hosts", "status"], log: dir + "/status.log", timeout: 60, env: env)
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("104 jobs — 104 done"), status.output)
        XCTAssertTrue(status.output.contains("node1:") && status.output.contains("second:"), status.output)
        let stop = try runScript([launch, "--hosts", dir + "/my.hosts", "stop"], log: dir + "/stop.log", timeout: 60, env: env)
        XCTAssertEqual(stop.status, 0, stop.output)
        for name in ["node1", "second"] {
            let log = (try? String(contentsOfFile: dir + "/logs/worker-\(name).log", encoding: .utf8)) ?? ""
            XCTAssertTrue(log.contains("connecting to tcp://127.0.0.1:\(port)"), "gathered log of \(name): \(log)")
        }
        // Workers leave when the sweep completes; the coordinator too.
        eventually(15, "coordinator exited") {
            guard let pid = try? String(contentsOfFile: dir + "/logs/coordinator.pid", encoding: .utf8) else { return true }
            return kill(Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0) != 0
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Stand-in `ssh`/`scp` in DIR/bin that run on this machine, each "host" the home directory
    /// $FAKE_HOSTS/HOST.
    func writeStandInSSH(_ dir: String) {
        Harness.write("""
            #!/bin/bash
            # stand-in ssh for tests: [options] TARGET COMMAND -> COMMAND in $FAKE_HOSTS/HOST as home
            while [[ $1 == -* ]]; do if [[ $1 == -o || $1 == -p || $1 == -i ]]; then shift; fi; shift; done
            host=${1#*@}; shift
            mkdir -p "$FAKE_HOSTS/$host"
            cd "$FAKE_HOSTS/$host" && HOME="$FAKE_HOSTS/$host" exec bash -c "$*"
            """, dir + "/bin/ssh")
        Harness.write("""
            #!/bin/bash
            # stand-in scp for tests: HOST:PATH is $FAKE_HOSTS/HOST/PATH
            args=()
            while [[ $# -gt 0 ]]; do case $1 in -o|-P|-i) shift 2;; -*) shift;; *) args+=("$1"); shift;; esac; done
            map() { if [[ $1 == *:* ]]; then h=${1%%:*}; h=${h#*@}; echo "$FAKE_HOSTS/$h/${1#*:}"; else echo "$1"; fi; }
            dst=$(map "${args[-1]}")
            for src in "${args[@]:0:${#args[@]}-1}"; do cp "$(map "$src")" "$dst" || exit 1; done
            """, dir + "/bin/scp")
        chmod(dir + "/bin/ssh", 0o755)
        chmod(dir + "/bin/scp", 0o755)
    }

    /// launch.sh deploys its own binary: a host without ranksweep and a host with another version
    /// get a copy in REMOTE_DIR/bin and run it; a host that keeps (copy=no) a binary of another wire
    /// protocol is refused with a message naming both protocols, and `start` exits 1.
    func testLaunchCopiesTheBinaryAndRefusesAnotherProtocol() throws {
        let dir = Harness.tempDir("launchcopy")
        writeStandInSSH(dir)
        let oldBinary = """
            #!/bin/bash
            # an older ranksweep: another version and protocol
            case "$*" in "--version") echo 0.1.0;; "version --protocol") echo 1;; *) echo "old ranksweep: $*" >&2; exit 1;; esac
            """
        for host in ["old.test", "pinned.test"] {
            Harness.write(oldBinary, dir + "/hosts/\(host)/opt/ranksweep")
            chmod(dir + "/hosts/\(host)/opt/ranksweep", 0o755)
        }
        let port = Harness.freePort()
        // Long enough (10 s of sleeps on one slot) that the second host, which gets its copy later, joins.
        Harness.write("noop: 20\nsleep: {count: 20, seconds: 0.5}\n", dir + "/sweep.yaml")
        Harness.write("""
            COORDINATOR_ENDPOINT=tcp://127.0.0.1:\(port)
            BIND=tcp://127.0.0.1:\(port)
            SWEEP=\(dir)/sweep.yaml
            STATE_DIR=\(dir)/state
            KEYS=\(dir)/keys
            LOG_DIR=\(dir)/logs
            BIN=\(Harness.binary)
            worker fresh.test bin=opt/ranksweep threads=1
            worker old.test bin=opt/ranksweep threads=1
            worker pinned.test bin=opt/ranksweep copy=no threads=1
            """, dir + "/my.hosts")
        var env = Harness.env
        env["PATH"] = dir + "/bin:" + (env["PATH"] ?? "/usr/bin:/bin")
        env["FAKE_HOSTS"] = dir + "/hosts"
        let launch = Self.clusterDir + "/launch.sh"
        let start = try runScript([launch, "--hosts", dir + "/my.hosts", "start"], log: dir + "/start.log", timeout: 120, env: env)
        XCTAssertEqual(start.status, 1, "a refused worker makes start fail: \(start.output)")
        XCTAssertTrue(start.output.contains("fresh: opt/ranksweep on fresh.test is missing; copying"), start.output)
        XCTAssertTrue(start.output.contains("old: opt/ranksweep on old.test is ranksweep 0.1.0, not "), start.output)
        XCTAssertTrue(start.output.contains("pinned: opt/ranksweep on pinned.test is ranksweep 0.1.0 speaking protocol 1, "
                                            + "the coordinator speaks protocol \(Wire.version)"), start.output)
        XCTAssertTrue(start.output.contains("fresh: worker started") && start.output.contains("old: worker started"), start.output)
        XCTAssertFalse(start.output.contains("pinned: worker started"), start.output)
        let size = { (path: String) in (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue }
        for host in ["fresh.test", "old.test"] {
            XCTAssertEqual(size(dir + "/hosts/\(host)/.ranksweep/bin/ranksweep"), size(Harness.binary), "\(host) got the coordinator's binary")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/hosts/pinned.test/.ranksweep/bin/ranksweep"), "copy=no copies nothing")
        let done = { (try? SweepStore(stateDir: dir + "/state", readOnly: true).results()) ?? [] }
        eventually(90, "sweep done on the copied binaries") { done().count == 40 }
        let joined = (try? SweepStore(stateDir: dir + "/state", readOnly: true).workers().map(\.id)) ?? []
        XCTAssertTrue(joined.contains { $0.hasPrefix("fresh-") } && joined.contains { $0.hasPrefix("old-") },
                      "both deployed hosts' workers joined: \(joined)")
        XCTAssertFalse(joined.contains { $0.hasPrefix("pinned-") }, "the refused host never joined: \(joined)")
        let stop = try runScript([launch, "--hosts", dir + "/my.hosts", "stop"], log: dir + "/stop.log", timeout: 60, env: env)
        XCTAssertEqual(stop.status, 0, stop.output)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
