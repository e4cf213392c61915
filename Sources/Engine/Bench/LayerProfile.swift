import Basics
/// Process CPU time (all threads) per layer and direction, summed over the steps a model runs while
/// a profile is set (`UNet.profile`). For finding where a training step goes (`ranksweep bench
/// engine --layers`); CPU time, because on a shared machine a layer's wall time swings with the
/// load while its CPU time does not. Wall time is kept too: CPU over wall is how many of the
/// threads a layer kept busy (a serial stretch shows as 1.0). Off by default; costs four clock
/// reads per layer call when on.
public final class LayerProfile {
    public struct Entry: Sendable {
        public var key: String
        public var seconds: Double
        public var wallSeconds: Double
        public var calls: Int
    }

    private var index: [String: Int] = [:]
    public private(set) var entries: [Entry] = []

    public init() {}

    /// Runs `body`, adding its CPU time to `key` (first use fixes the key's position in `entries`).
    @inline(__always)
    public func time<T>(_ key: @autoclosure () -> String, _ body: () -> T) -> T {
        let (start, wallStart) = (processCPUSeconds(), monotonicSeconds())
        let result = body()
        let (elapsed, wall) = (processCPUSeconds() - start, monotonicSeconds() - wallStart)
        let k = key()
        if let i = index[k] {
            entries[i].seconds += elapsed
            entries[i].wallSeconds += wall
            entries[i].calls += 1
        } else {
            index[k] = entries.count
            entries.append(Entry(key: k, seconds: elapsed, wallSeconds: wall, calls: 1))
        }
        return result
    }

    public func reset() { index = [:]; entries = [] }
}

extension Optional where Wrapped == LayerProfile {
    /// `body` timed under `key` when a profile is set, run plainly otherwise.
    @inline(__always)
    func time<T>(_ key: @autoclosure () -> String, _ body: () -> T) -> T {
        switch self {
        case .some(let profile): return profile.time(key(), body)
        case .none: return body()
        }
    }
}
