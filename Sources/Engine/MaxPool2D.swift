/// Max pooling, 2x2 window, stride 2, on NHWC input with even height and width.
/// Forward keeps, per output element, the flat index of the input element that won.
public final class MaxPool2D: Layer {
    public let name: String
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] % 2 == 0 && x.shape[2] % 2 == 0,
                     "MaxPool2D \(name): expected NHWC with even height and width, got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        inputShape = x.shape
        var y = Tensor.zeros([n, oh, ow, c])
        argmax = [Int32](repeating: 0, count: y.count)
        x.storage.withUnsafeBufferPointer { xb in
            y.storage.withUnsafeMutableBufferPointer { yb in
                argmax.withUnsafeMutableBufferPointer { ab in
                    var o = 0
                    for img in 0..<n {
                        for i in 0..<oh {
                            for j in 0..<ow {
                                let base = ((img * h + 2 * i) * w + 2 * j) * c
                                for ch in 0..<c {
                                    // the four taps: (0,0), (0,1), (1,0), (1,1); strict ">" keeps the first
                                    // maximum, as TensorFlow does
                                    var best = base + ch
                                    var bestValue = xb[best]
                                    let i1 = best + c, i2 = best + w * c, i3 = best + w * c + c
                                    if xb[i1] > bestValue { bestValue = xb[i1]; best = i1 }
                                    if xb[i2] > bestValue { bestValue = xb[i2]; best = i2 }
                                    if xb[i3] > bestValue { bestValue = xb[i3]; best = i3 }
                                    yb[o] = bestValue
                                    ab[o] = Int32(best)
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!inputShape.isEmpty, "MaxPool2D \(name): backward before forward")
        precondition(dy.count == argmax.count, "MaxPool2D \(name): dy \(dy.shape) vs pooled output")
        var dx = Tensor.zeros(inputShape)
        dx.storage.withUnsafeMutableBufferPointer { db in
            dy.storage.withUnsafeBufferPointer { gb in
                argmax.withUnsafeBufferPointer { ab in
                    for o in 0..<gb.count { db[Int(ab[o])] += gb[o] }
                }
            }
        }
        return dx
    }
}

/// Channel concatenation of two NHWC tensors with equal n, h, w: `[a, b]` along the last axis.
public enum Concat {
    public static func channels(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank == 4 && b.rank == 4 && a.shape.dropLast() == b.shape.dropLast(),
                     "Concat: shapes \(a.shape) and \(b.shape) differ outside the channel axis")
        let ca = a.shape[3], cb = b.shape[3], c = ca + cb
        let pixels = a.count / ca
        var out = Tensor.zeros(Array(a.shape.dropLast()) + [c])
        out.storage.withUnsafeMutableBufferPointer { ob in
            a.storage.withUnsafeBufferPointer { ab in
                b.storage.withUnsafeBufferPointer { bb in
                    for p in 0..<pixels {
                        (ob.baseAddress! + p * c).update(from: ab.baseAddress! + p * ca, count: ca)
                        (ob.baseAddress! + p * c + ca).update(from: bb.baseAddress! + p * cb, count: cb)
                    }
                }
            }
        }
        return out
    }

    /// The gradient of `channels(a, b)` split back into its two parts.
    public static func split(_ d: Tensor, firstChannels ca: Int) -> (Tensor, Tensor) {
        let c = d.shape[3], cb = c - ca
        precondition(ca > 0 && cb > 0, "Concat.split: \(ca) of \(c) channels")
        let pixels = d.count / c
        let prefix = Array(d.shape.dropLast())
        var a = Tensor.zeros(prefix + [ca]), b = Tensor.zeros(prefix + [cb])
        d.storage.withUnsafeBufferPointer { db in
            a.storage.withUnsafeMutableBufferPointer { ab in
                b.storage.withUnsafeMutableBufferPointer { bb in
                    for p in 0..<pixels {
                        (ab.baseAddress! + p * ca).update(from: db.baseAddress! + p * c, count: ca)
                        (bb.baseAddress! + p * cb).update(from: db.baseAddress! + p * c + ca, count: cb)
                    }
                }
            }
        }
        return (a, b)
    }
}
