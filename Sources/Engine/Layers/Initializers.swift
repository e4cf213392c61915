import Foundation

/// Weight initialisers as Keras defines them, drawing from an explicit seeded generator.
public enum Initializer: String, Codable, Sendable {
    /// Keras `HeNormal`: truncated normal (cut at 2 sigma), stddev sqrt(2 / fan_in) / 0.8796.
    case heNormal
    /// Keras `GlorotUniform` (the Conv2D default): uniform in +-sqrt(6 / (fan_in + fan_out)).
    case glorotUniform

    /// A tensor of `shape` whose fans are `fanIn` and `fanOut`.
    public func make(shape: [Int], fanIn: Int, fanOut: Int, rng: inout SeededGenerator) -> Tensor {
        var t = Tensor.zeros(shape)
        switch self {
        case .heNormal:
            // 0.87962566103423978 is the stddev of a standard normal truncated to [-2, 2] (Keras).
            let std = Float((2.0 / Double(fanIn)).squareRoot() / 0.87962566103423978)
            for i in 0..<t.count {
                var z: Float
                repeat { z = rng.nextNormal() } while abs(z) > 2
                t.storage[i] = z * std
            }
        case .glorotUniform:
            let limit = Float((6.0 / Double(fanIn + fanOut)).squareRoot())
            for i in 0..<t.count { t.storage[i] = rng.uniform(-limit, limit) }
        }
        return t
    }
}
