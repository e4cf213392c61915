import CKernels
/// Rectified linear unit, elementwise. Forward keeps its output (y > 0 is the gradient's mask).
public final class ReLU: Layer {
    public let name: String
    private var output: Tensor?

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        // Written straight into a fresh buffer: copying x first and then clamping would touch
        // every element twice.
        var y = Tensor.uninitialized(x.shape)
        x.storage.withUnsafeBufferPointer { xb in
            y.storage.withUnsafeMutableBufferPointer { yb in
                let (xp, yp) = (SendablePointer(xb.baseAddress!), SendablePointer(yb.baseAddress!))
                Parallel.rows(xb.count) { range in
                    var i = range.lowerBound
                    while i + 8 <= range.upperBound {
                        let v = xp.pointer.load8(i)
                        yp.pointer.store8(v.replacing(with: 0, where: v .< 0), i)
                        i += 8
                    }
                    while i < range.upperBound { yp.pointer[i] = max(xp.pointer[i], 0); i += 1 }
                }
            }
        }
        output = y
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU \(name): backward before forward") }
        precondition(dy.shape == y.shape, "ReLU \(name): dy \(dy.shape) vs output \(y.shape)")
        var dx = Tensor.uninitialized(dy.shape)
        dy.storage.withUnsafeBufferPointer { gb in
            y.storage.withUnsafeBufferPointer { yb in
                dx.storage.withUnsafeMutableBufferPointer { db in
                    let (gp, yp, dp) = (SendablePointer(gb.baseAddress!), SendablePointer(yb.baseAddress!), SendablePointer(db.baseAddress!))
                    Parallel.rows(gb.count) { range in
                        var i = range.lowerBound
                        while i + 8 <= range.upperBound {
                            dp.pointer.store8(gp.pointer.load8(i).replacing(with: 0, where: yp.pointer.load8(i) .<= 0), i)
                            i += 8
                        }
                        while i < range.upperBound { dp.pointer[i] = yp.pointer[i] > 0 ? gp.pointer[i] : 0; i += 1 }
                    }
                }
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

    /// In C (`ckernels_sigmoid`): e^-|x| by a polynomial of about 1 ulp, vectorised (libm's exp,
    /// one value at a time, took most of the layer's time).
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = Tensor.uninitialized(x.shape)
        x.storage.withUnsafeBufferPointer { xb in
            y.storage.withUnsafeMutableBufferPointer { yb in
                let (source, target) = (SendablePointer(xb.baseAddress!), SendablePointer(yb.baseAddress!))
                Parallel.rows(xb.count) { range in
                    ckernels_sigmoid(source.pointer + range.lowerBound, range.count, target.pointer + range.lowerBound)
                }
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

