import CKernels
/// Max pooling, 2x2 window, stride 2, on NHWC input with even height and width.
/// Forward keeps, per output element, the flat index of the input element that won.
public final class MaxPool2D: Layer {
    public let name: String
    /// Per output element, which of its window's four taps won: 0 (0,0), 1 (0,1), 2 (1,0), 3 (1,1).
    private var winners: [UInt8] = []
    private var inputShape: [Int] = []

    public init(name: String) { self.name = name }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] % 2 == 0 && x.shape[2] % 2 == 0,
                     "MaxPool2D \(name): expected NHWC with even height and width, got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        inputShape = x.shape
        var y = Tensor.uninitialized([n, oh, ow, c])
        winners = [UInt8](unsafeUninitializedCapacity: y.count) { _, count in count = y.count }
        x.storage.withUnsafeBufferPointer { xb in
            y.storage.withUnsafeMutableBufferPointer { yb in
                winners.withUnsafeMutableBufferPointer { wb in
                    let (xp, yp, wp) = (SendablePointer(xb.baseAddress!), SendablePointer(yb.baseAddress!), SendablePointer(wb.baseAddress!))
                    // One output row (image, i) at a time, rows split across threads.
                    Parallel.rows(n * oh, minimumPerPart: max(1, Parallel.elementwiseMinimum / (ow * c))) { range in
                        for row in range {
                            let img = row / oh, i = row % oh
                            for j in 0..<ow {
                                let base = xp.pointer + ((img * h + 2 * i) * w + 2 * j) * c
                                let o = (row * ow + j) * c
                                var ch = 0
                                while ch + 8 <= c {
                                    // Eight channels at once; the same strict ">" in tap order.
                                    var best = base.load8(ch), tap = SIMD8<Int32>(repeating: 0)
                                    let v1 = base.load8(c + ch), w1 = v1 .> best
                                    best.replace(with: v1, where: w1); tap.replace(with: 1, where: w1)
                                    let v2 = base.load8(w * c + ch), w2 = v2 .> best
                                    best.replace(with: v2, where: w2); tap.replace(with: 2, where: w2)
                                    let v3 = base.load8(w * c + c + ch), w3 = v3 .> best
                                    best.replace(with: v3, where: w3); tap.replace(with: 3, where: w3)
                                    yp.pointer.store8(best, o + ch)
                                    UnsafeMutableRawPointer(wp.pointer + o + ch).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: tap), as: SIMD8<UInt8>.self)
                                    ch += 8
                                }
                                for ch in ch..<c {
                                    // strict ">" keeps the first maximum in tap order, as TensorFlow does
                                    var best = base[ch], tap: UInt8 = 0
                                    if base[c + ch] > best { best = base[c + ch]; tap = 1 }
                                    if base[w * c + ch] > best { best = base[w * c + ch]; tap = 2 }
                                    if base[w * c + c + ch] > best { best = base[w * c + c + ch]; tap = 3 }
                                    yp.pointer[o + ch] = best
                                    wp.pointer[o + ch] = tap
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
        precondition(dy.count == winners.count, "MaxPool2D \(name): dy \(dy.shape) vs pooled output")
        let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, ow) = (h / 2, w / 2)
        // Every input element is written: the winner gets the gradient, the other three taps zero.
        var dx = Tensor.uninitialized(inputShape)
        dx.storage.withUnsafeMutableBufferPointer { db in
            dy.storage.withUnsafeBufferPointer { gb in
                winners.withUnsafeBufferPointer { wb in
                    let (dp, gp, wp) = (SendablePointer(db.baseAddress!), SendablePointer(gb.baseAddress!), SendablePointer(wb.baseAddress!))
                    // Output row r = (image, i) writes input rows 2i and 2i+1 of that image: rows
                    // 2r and 2r+1 counting across images.
                    Parallel.rows(n * oh, minimumPerPart: max(1, Parallel.elementwiseMinimum / (ow * c))) { range in
                        let first = range.lowerBound
                        ckernels_maxpool_backward(gp.pointer + first * ow * c, wp.pointer + first * ow * c, range.count, ow, c, w,
                                                  dp.pointer + 2 * first * w * c)
                    }
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
        var out = Tensor.uninitialized(Array(a.shape.dropLast()) + [c])
        out.storage.withUnsafeMutableBufferPointer { ob in
            a.storage.withUnsafeBufferPointer { ab in
                b.storage.withUnsafeBufferPointer { bb in
                    let (op, ap, bp) = (SendablePointer(ob.baseAddress!), SendablePointer(ab.baseAddress!), SendablePointer(bb.baseAddress!))
                    Parallel.rows(pixels, minimumPerPart: max(1, Parallel.elementwiseMinimum / c)) { range in
                        for p in range {
                            (op.pointer + p * c).update(from: ap.pointer + p * ca, count: ca)
                            (op.pointer + p * c + ca).update(from: bp.pointer + p * cb, count: cb)
                        }
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
        var a = Tensor.uninitialized(prefix + [ca]), b = Tensor.uninitialized(prefix + [cb])
        d.storage.withUnsafeBufferPointer { db in
            a.storage.withUnsafeMutableBufferPointer { ab in
                b.storage.withUnsafeMutableBufferPointer { bb in
                    let (dp, ap, bp) = (SendablePointer(db.baseAddress!), SendablePointer(ab.baseAddress!), SendablePointer(bb.baseAddress!))
                    Parallel.rows(pixels, minimumPerPart: max(1, Parallel.elementwiseMinimum / c)) { range in
                        for p in range {
                            (ap.pointer + p * ca).update(from: dp.pointer + p * c, count: ca)
                            (bp.pointer + p * cb).update(from: dp.pointer + p * c + ca, count: cb)
                        }
                    }
                }
            }
        }
        return (a, b)
    }
}
