/// Rectified linear unit, elementwise. Forward keeps its output (y > 0 is the gradient's mask).
public final class ReLU: Layer {
    public let name: String
    private var output: Tensor?

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        // Written straight into a fresh buffer: copying x first and then clamping would touch
        // every element twice.
        let y = Tensor.mapping(x) { max($0, 0) }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU \(name): backward before forward") }
        precondition(dy.shape == y.shape, "ReLU \(name): dy \(dy.shape) vs output \(y.shape)")
        return Tensor.mapping(dy, y) { g, out in out > 0 ? g : 0 }
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
        return Tensor.mapping(dy, y) { g, out in g * out * (1 - out) }
    }
}

@inline(__always) func expf(_ x: Float) -> Float { Float(_exp(Double(x))) }
