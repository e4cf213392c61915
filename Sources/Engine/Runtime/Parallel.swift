import Dispatch
import Synchronization

/// The engine's thread count, set by `BLAS.setThreads` (0: not set, use OpenBLAS's count at load).
let engineThreads = Atomic<Int>(0)

/// Splits independent work across the engine's threads (`BLAS.threads`). Callers pass disjoint
/// ranges and every part runs serial code (`BLAS.gemmSerial`), so parts never nest.
enum Parallel {
    /// Parts to split `rows` of work into: one per engine thread, as long as each part gets at
    /// least `minimumPerPart` rows.
    static func parts(rows: Int, minimumPerPart: Int = 256) -> Int {
        max(1, min(BLAS.threads, rows / max(1, minimumPerPart)))
    }

    /// The `part`-th of `parts` contiguous slices of `0..<count`.
    static func slice(_ count: Int, parts: Int, _ part: Int) -> Range<Int> {
        let per = (count + parts - 1) / parts
        return min(count, part * per)..<min(count, (part + 1) * per)
    }

    static func forEach(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
        if iterations <= 1 { if iterations == 1 { body(0) }; return }
        if WorkerPool.enabled && iterations < 1 << 16 {
            WorkerPool.shared.run(iterations, body)
        } else {
            DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
        }
    }

    /// Elements below which an elementwise loop stays on one thread (waking a second costs more).
    static let elementwiseMinimum = 1 << 14

    /// Runs `body` on contiguous slices of `0..<count` (one per thread when `count` reaches
    /// `minimumPerPart` per part), for memory-bound elementwise loops.
    static func rows(_ count: Int, minimumPerPart: Int = elementwiseMinimum, _ body: @Sendable (Range<Int>) -> Void) {
        let parts = Parallel.parts(rows: count, minimumPerPart: minimumPerPart)
        forEach(parts) { part in body(slice(count, parts: parts, part)) }
    }
}

/// Carries a raw pointer into `Parallel.forEach`. Safe only because every caller hands each
/// iteration a disjoint part of the buffer and waits for all of them before touching it again.
struct SendablePointer<Pointee>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Pointee>
    init(pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
    init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
    init(_ pointer: UnsafePointer<Pointee>) { self.pointer = UnsafeMutablePointer(mutating: pointer) }
}
