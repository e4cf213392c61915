import Foundation

/// OpenBLAS 0.3.21 (Debian) detects this machine kind's AVX-512 CPUs as Haswell; with
/// `OPENBLAS_CORETYPE=SkylakeX` its sgemm runs close to twice as fast (`ranksweep bench engine` prints the ceiling). The core type is
/// read when the library loads, before `main`, so the only way to set it from inside is to re-exec
/// ourselves once with it in the environment. A user's own `OPENBLAS_CORETYPE` is always respected;
/// `RANKSWEEP_NO_REEXEC=1` turns this off.
enum BLASEnvironment {
    static func reexecIfUseful() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["RANKSWEEP_NO_REEXEC"] == nil else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        guard flags.contains("avx512f"), flags.contains("avx512bw"), flags.contains("avx512vl") else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on with the default kernels.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
