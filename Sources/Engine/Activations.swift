/// Rectified linear unit, elementwise. Forward keeps its output (y > 0 is the gradient's mask).
public final class ReLU: Layer {
    public let name: String
    private var output: Tensor?

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = x
        y.storage.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count { b[i] = max(b[i], 0) }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU \(name): backward before forward") }
        precondition(dy.shape == y.shape, "ReLU \(name): dy \(dy.shape) vs output \(y.shape)")
        var dx = dy
        dx.storage.withUnsafeMutableBufferPointer { d in
            y.storage.withUnsafeBufferPointer { yb in
                for i in 0..<d.count where yb[i] <= 0 { d[i] = 0 }
            }
        }
        return dx
    }
}

/// Logistic sigmoid, elementwise. Forward keeps its output: dy/dx = y (1 - y).
public final class Sigmoid: Layer {
    public let name: String
    private var output: Tensor?

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = x
        y.storage.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count {
                let v = b[i]
                // Two branches keep exp from overflowing for large |v|.
                if v >= 0 { b[i] = 1 / (1 + expf(-v)) } else { let e = expf(v); b[i] = e / (1 + e) }
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("Sigmoid \(name): backward before forward") }
        precondition(dy.shape == y.shape, "Sigmoid \(name): dy \(dy.shape) vs output \(y.shape)")
        var dx = dy
        dx.storage.withUnsafeMutableBufferPointer { d in
            y.storage.withUnsafeBufferPointer { yb in
                for i in 0..<d.count { d[i] *= yb[i] * (1 - yb[i]) }
            }
        }
        return dx
    }
}

@inline(__always) func expf(_ x: Float) -> Float { Float(_exp(Double(x))) }
