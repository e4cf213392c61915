/// Adam as Keras 3 implements it (beta1 0.9, beta2 0.999, epsilon 1e-7 added to sqrt(v)):
/// ```
/// alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
/// m += (g - m)(1 - beta1);  v += (g^2 - v)(1 - beta2);  w -= alpha m / (sqrt(v) + eps)
/// ```
/// The moments are kept per parameter, aligned with the list given at construction.
public final class Adam {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public private(set) var step = 0
    private let parameters: [Parameter]
    private var m: [[Float]], v: [[Float]]

    public init(parameters: [Parameter], learningRate: Float = 1e-3,
                beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        precondition(parameters.allSatisfy(\.trainable), "Adam: every parameter must be trainable")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        m = parameters.map { [Float](repeating: 0, count: $0.value.count) }
        v = m
    }

    /// The moments per parameter (aligned with the parameter list), for checkpoints.
    public var moments: (m: [[Float]], v: [[Float]]) { (m, v) }

    /// Continues from a checkpoint's step count and moments; false (nothing changed) when they do
    /// not fit this optimizer's parameters.
    public func restore(step: Int, m: [[Float]], v: [[Float]]) -> Bool {
        guard step >= 0, m.count == parameters.count, v.count == parameters.count,
              zip(parameters, zip(m, v)).allSatisfy({ $0.value.count == $1.0.count && $0.value.count == $1.1.count }) else { return false }
        self.step = step; self.m = m; self.v = v
        return true
    }

    /// One update from the gradients currently held by the parameters.
    public func update() {
        step += 1
        let t = Double(step)
        let alpha = Float(Double(learningRate) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t)))
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for (index, p) in parameters.enumerated() {
            p.value.storage.withUnsafeMutableBufferPointer { w in
                p.grad.storage.withUnsafeBufferPointer { g in
                    m[index].withUnsafeMutableBufferPointer { mb in
                        v[index].withUnsafeMutableBufferPointer { vb in
                            let (wp, gp, mp, vp) = (SendablePointer(w.baseAddress!), SendablePointer(g.baseAddress!),
                                                    SendablePointer(mb.baseAddress!), SendablePointer(vb.baseAddress!))
                            Parallel.rows(w.count) { range in
                                var i = range.lowerBound
                                while i + 8 <= range.upperBound {
                                    let g = gp.pointer.load8(i)
                                    let m = mp.pointer.load8(i) + (g - mp.pointer.load8(i)) * (1 - b1)
                                    let v = vp.pointer.load8(i) + (g * g - vp.pointer.load8(i)) * (1 - b2)
                                    mp.pointer.store8(m, i)
                                    vp.pointer.store8(v, i)
                                    wp.pointer.store8(wp.pointer.load8(i) - alpha * m / (v.squareRoot() + eps), i)
                                    i += 8
                                }
                                while i < range.upperBound {
                                    let gi = gp.pointer[i]
                                    mp.pointer[i] += (gi - mp.pointer[i]) * (1 - b1)
                                    vp.pointer[i] += (gi * gi - vp.pointer[i]) * (1 - b2)
                                    wp.pointer[i] -= alpha * mp.pointer[i] / (vp.pointer[i].squareRoot() + eps)
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private func pow(_ x: Double, _ y: Double) -> Double { _exp(y * _log(x)) }
}
