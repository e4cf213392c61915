import Dispatch
import Foundation

/// Splits independent work across the machine's cores (memory-bound loops such as im2col, which
/// would otherwise run on one core while BLAS uses all of them). Callers pass disjoint ranges.
enum Parallel {
    /// Parts to split `rows` of work into: one per BLAS thread the user asked for, when there is
    /// enough work to be worth it.
    static func parts(rows: Int) -> Int {
        rows >= 2048 ? max(1, min(BLAS.threads, rows / 1024)) : 1
    }

    /// The `part`-th of `parts` contiguous slices of `0..<count`.
    static func slice(_ count: Int, parts: Int, _ part: Int) -> Range<Int> {
        let per = (count + parts - 1) / parts
        return min(count, part * per)..<min(count, (part + 1) * per)
    }

    static func forEach(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
        if iterations <= 1 { if iterations == 1 { body(0) }; return }
        DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
    }
}

/// Carries a raw pointer into `Parallel.forEach`. Safe only because every caller hands each
/// iteration a disjoint part of the buffer and waits for all of them before touching it again.
struct SendablePointer<Pointee>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Pointee>
}
