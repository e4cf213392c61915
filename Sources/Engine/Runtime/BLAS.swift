import CBLAS
import CSupport

/// Thin, row-major wrappers over OpenBLAS. Every matrix product in the engine goes through here.
///
/// Threads: the engine splits work across cores itself (`Parallel`), and OpenBLAS runs
/// single-threaded inside each part. OpenBLAS's own workers busy-wait (`sched_yield`) after every
/// threaded call; on a 2-core machine they took a fifth of the CPU from the engine's parts
/// (measured with perf on `ranksweep bench engine`). So the library is set to one thread when the
/// engine first touches it, and `threads` is the engine's count of parts. Only whole-library
/// routines that cannot be split from outside (LAPACK's SVD, the sgemm ceiling measurement) get
/// OpenBLAS's threads back, through `withLibraryThreads`.
public enum BLAS {
    /// The thread count OpenBLAS chose at load (OPENBLAS_NUM_THREADS or the cores), read once.
    /// Reading it sets the process up for the engine: OpenBLAS to one thread, and malloc to keep
    /// freed activations for reuse instead of mapping fresh zero-filled pages for every layer.
    private static let initialThreads: Int = {
        let n = Int(openblas_get_num_threads())
        openblas_set_num_threads(1)
        _ = csupport_keep_freed_memory()
        return max(1, n)
    }()

    /// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major, on the calling thread.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored. For use inside parallel parts.
    @inline(__always)
    public static func gemmSerial(transA: Bool = false, transB: Bool = false,
                                  m: Int, n: Int, k: Int,
                                  alpha: Float = 1,
                                  a: UnsafePointer<Float>, lda: Int,
                                  b: UnsafePointer<Float>, ldb: Int,
                                  beta: Float,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        _ = initialThreads
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same product, split across the engine's threads when it is large enough: by rows of C
    /// when there are enough, else by columns. Each element of C is computed by one serial GEMM
    /// over the whole of k, so the result does not depend on the split.
    public static func gemm(transA: Bool = false, transB: Bool = false,
                            m: Int, n: Int, k: Int,
                            alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        let parts = threads
        let work = m * n * max(k, 1)
        guard parts > 1, work >= 1 << 20 else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let (ap, bp, cp) = (SendablePointer(a), SendablePointer(b), SendablePointer(c))
        if m >= 32 * parts {
            Parallel.forEach(parts) { part in
                let rows = Parallel.slice(m, parts: parts, part)
                // Rows of C are rows of op(A): a row offset in A, or a column offset when A is transposed.
                let aPart = transA ? ap.pointer + rows.lowerBound : ap.pointer + rows.lowerBound * lda
                gemmSerial(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                           a: aPart, lda: lda, b: bp.pointer, ldb: ldb, beta: beta,
                           c: cp.pointer + rows.lowerBound * ldc, ldc: ldc)
            }
        } else if n >= 16 * parts {
            Parallel.forEach(parts) { part in
                let cols = Parallel.slice(n, parts: parts, part)
                let bPart = transB ? bp.pointer + cols.lowerBound * ldb : bp.pointer + cols.lowerBound
                gemmSerial(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha,
                           a: ap.pointer, lda: lda, b: bPart, ldb: ldb, beta: beta,
                           c: cp.pointer + cols.lowerBound, ldc: ldc)
            }
        } else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// A GEMM inside one of `parts` parallel parts: serial when the work is already split across
    /// threads, otherwise (one part) split by `gemm` itself. Either way the result is the same.
    @inline(__always)
    public static func gemm(inPartOf parts: Int, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if parts == 1 {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Threads the engine splits work into from now on. Record it with every timing; results are
    /// bit-identical for the same seed and the same count.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "BLAS.setThreads: need at least one thread, got \(n)")
        _ = initialThreads
        engineThreads.store(n, ordering: .relaxed)
    }

    /// The engine's thread count (by default the one OpenBLAS chose at load).
    public static var threads: Int {
        let n = engineThreads.load(ordering: .relaxed)
        return n > 0 ? n : initialThreads
    }

    /// Runs `body` with OpenBLAS's own threads (as many as the engine's), then back to one:
    /// for library routines the engine cannot split itself (LAPACK) and for measuring the ceiling.
    public static func withLibraryThreads<T>(_ body: () throws -> T) rethrows -> T {
        _ = initialThreads
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// The kernel family OpenBLAS picked at load time (e.g. "SkylakeX", "Haswell").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
