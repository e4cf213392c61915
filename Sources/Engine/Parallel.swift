import Dispatch
import Foundation

/// Splits independent work across the machine's cores (memory-bound loops such as im2col, which
/// would otherwise run on one core while BLAS uses all of them). Callers pass disjoint ranges.
enum Parallel {
    static let width = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))

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
