import CBLAS

/// Thin, row-major wrappers over OpenBLAS. Every matrix product in the engine goes through `gemm`.
public enum BLAS {
    /// C (m x n) = alpha * op(A) * op(B) + beta * C, all row-major.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored.
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false,
                            m: Int, n: Int, k: Int,
                            alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Threads OpenBLAS uses from now on. Record it with every timing.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "BLAS.setThreads: need at least one thread, got \(n)")
        openblas_set_num_threads(Int32(n))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS single-threaded (when `on`), restoring the thread count after:
    /// for regions where the engine runs one GEMM per core itself. OpenBLAS's thread count is
    /// process-wide; an engine has one owner thread, so nothing else changes it meanwhile.
    public static func singleThreaded(_ on: Bool, _ body: () -> Void) {
        guard on else { body(); return }
        let saved = openblas_get_num_threads()
        openblas_set_num_threads(1)
        body()
        openblas_set_num_threads(saved)
    }

    /// The kernel family OpenBLAS picked at load time (e.g. "SkylakeX", "Haswell").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
