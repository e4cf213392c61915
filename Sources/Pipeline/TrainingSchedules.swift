import Foundation

/// Why training ended. Stored by its raw value (`metrics.json`'s `stoppedBy`, a checkpoint's `finished`).
public enum StopReason: String, Codable, Sendable {
    /// It ran every epoch.
    case epochs
    case earlyStopping = "early stopping"
    /// SIGINT/SIGTERM: the best model so far is saved.
    case interrupted
}

/// Keras's `EarlyStopping` with `restore_best_weights`: an epoch improves when its monitored value
/// (lower is better) is strictly below the best so far; `patience` epochs without one stop training.
/// A value type the checkpoint stores whole, so a resumed run continues the same count.
public struct EarlyStopping: Codable, Sendable, Equatable {
    public var patience: Int
    /// The best monitored value so far, as bits (exact through JSON, infinity included).
    public var bestBits: UInt64
    /// The epoch it was reached (0: the start).
    public var bestEpoch: Int
    public var sinceBest: Int

    public init(patience: Int, best: Double = .infinity) {
        self.patience = patience; bestBits = best.bitPattern; bestEpoch = 0; sinceBest = 0
    }

    public var best: Double { Double(bitPattern: bestBits) }

    public enum Verdict: Equatable { case improved, waiting, stop }

    /// Records an epoch's monitored value.
    public mutating func record(_ value: Double, epoch: Int) -> Verdict {
        if value < best {
            bestBits = value.bitPattern; bestEpoch = epoch; sinceBest = 0
            return .improved
        }
        sinceBest += 1
        return sinceBest >= patience ? .stop : .waiting
    }
}

/// Keras's `ReduceLROnPlateau` on the validation loss: an epoch improves when the loss is lower
/// than the best by more than `minDelta`; after `patience` epochs without one the learning rate is
/// multiplied by `factor`, never below `minimum`, and the count starts again.
public struct PlateauSchedule: Codable, Sendable, Equatable {
    public var patience: Int
    public var factor: Float
    public var minimum: Float
    public var minDelta: Double
    public var bestBits: UInt64
    public var sinceBest: Int

    public init(patience: Int, factor: Float, minimum: Float, minDelta: Double) {
        self.patience = patience; self.factor = factor; self.minimum = minimum; self.minDelta = minDelta
        bestBits = Double.infinity.bitPattern; sinceBest = 0
    }

    public var best: Double { Double(bitPattern: bestBits) }

    /// Records an epoch's validation loss; returns the new learning rate when it drops.
    public mutating func record(_ loss: Double, learningRate: Float) -> Float? {
        if loss < best - minDelta {
            bestBits = loss.bitPattern; sinceBest = 0
            return nil
        }
        sinceBest += 1
        guard sinceBest >= patience && learningRate > minimum else { return nil }
        sinceBest = 0
        return max(minimum, learningRate * factor)
    }
}
