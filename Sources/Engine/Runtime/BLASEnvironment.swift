import Basics
import Foundation

/// Debian's OpenBLAS 0.3.21 does not know many AVX-512 CPUs: on Intel Xeon family 6 model 207 it
/// loads its Prescott kernels (18-24 GFLOP/s sgemm), on other machines Haswell's (AVX2). With `OPENBLAS_CORETYPE=SkylakeX` its sgemm runs several times faster on the same CPU
/// (`ranksweep bench engine` prints the ceiling). The core type is read when the library loads,
/// before `main`, so the only way to set it from inside is to re-exec ourselves once with it in the
/// environment. That happens when the CPU has every AVX-512 subset the SkylakeX kernels use and the
/// library picked a family without AVX-512; a library that already chose an AVX-512 family
/// (SkylakeX, Cooperlake, SapphireRapids) is left alone. A user's own `OPENBLAS_CORETYPE` is always
/// respected; `RANKSWEEP_NO_REEXEC=1` turns this off. The library's own pick is passed on in
/// `RANKSWEEP_BLAS_DETECTED`, so that benchmarks and metrics can say what was overridden.
public enum BLASEnvironment {
    /// Kernel families of OpenBLAS that use AVX-512.
    static let avx512Families: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
    /// What the SkylakeX kernels need (OpenBLAS's own test for them).
    static let skylakeXFlags = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    public static func reexecIfUseful() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["RANKSWEEP_NO_REEXEC"] == nil else { return }
        let detected = BLAS.coreName
        guard shouldForceSkylakeX(detected: detected, cpuFlags: CPUInfo.flags) else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        setenv("RANKSWEEP_BLAS_DETECTED", detected, 1)
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on with the default kernels.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv("RANKSWEEP_BLAS_DETECTED")
    }

    /// True when the CPU can run the SkylakeX kernels and the library picked a family without AVX-512.
    public static func shouldForceSkylakeX(detected: String, cpuFlags: Set<String>) -> Bool {
        skylakeXFlags.allSatisfy(cpuFlags.contains) && !avx512Families.contains(detected.lowercased())
    }
}
