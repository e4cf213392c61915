import Foundation

/// Runs `body` for every index in `0..<count` on all cores and returns the results in order.
///
/// Decoding and generating images are independent per image, so the work splits cleanly; on the
/// 2-core machines this roughly halves dataset loading. The first error (lowest index) is
/// rethrown, so errors are reported deterministically whatever the scheduling.
func parallelMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
    if count == 0 { return [] }
    let slots = ResultSlots<T>(count: count)
    let workers = min(count, max(1, ProcessInfo.processInfo.activeProcessorCount))
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        var i = worker
        while i < count {
            slots.set(i, Result { try body(i) })
            i += workers
        }
    }
    return try slots.take().map { try $0!.get() }
}

/// One write-once slot per index: each index is written by exactly one worker, and the array is
/// read only after `concurrentPerform` returns, so no two threads touch the same slot.
private final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private var slots: UnsafeMutableBufferPointer<Result<T, Error>?>

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    func set(_ i: Int, _ value: Result<T, Error>) { slots[i] = value }

    func take() -> [Result<T, Error>?] { Array(slots) }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }
}
