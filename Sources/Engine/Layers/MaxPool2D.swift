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
        forward(x, channelOffset: 0, channels: x.rank == 4 ? x.shape[3] : 0)
    }

    /// Pools channels `channelOffset ..< channelOffset + channels` of `x` (the U-Net's skip, read
    /// in place from its decoder's joined input); backward's gradient has just those channels.
    public func forward(_ x: Tensor, channelOffset: Int, channels c: Int) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] % 2 == 0 && x.shape[2] % 2 == 0,
                     "MaxPool2D \(name): expected NHWC with even height and width, got \(x.shape)")
        precondition(c > 0 && channelOffset >= 0 && channelOffset + c <= x.shape[3],
                     "MaxPool2D \(name): cannot pool channels \(channelOffset)..<\(channelOffset + c) of \(x.shape)")
        let (n, h, w, stride) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        inputShape = [n, h, w, c]
        var y = Tensor.uninitialized([n, oh, ow, c])
        winners = [UInt8](unsafeUninitializedCapacity: y.count) { _, count in count = y.count }
        x.storage.withUnsafeBufferPointer { xb in
            y.storage.withUnsafeMutableBufferPointer { yb in
                winners.withUnsafeMutableBufferPointer { wb in
                    let (xp, yp, wp) = (SendablePointer(xb.baseAddress! + channelOffset), SendablePointer(yb.baseAddress!),
                                        SendablePointer(wb.baseAddress!))
                    // One output row (image, i) at a time, rows split across threads.
                    Parallel.rows(n * oh, minimumPerPart: max(1, Parallel.elementwiseMinimum / (ow * c))) { range in
                        for row in range {
                            let img = row / oh, i = row % oh
                            for j in 0..<ow {
                                let base = xp.pointer + ((img * h + 2 * i) * w + 2 * j) * stride
                                let o = (row * ow + j) * c
                                var ch = 0
                                while ch + 8 <= c {
                                    // Eight channels at once; the same strict ">" in tap order.
                                    var best = base.load8(ch), tap = SIMD8<Int32>(repeating: 0)
                                    let v1 = base.load8(stride + ch), w1 = v1 .> best
                                    best.replace(with: v1, where: w1); tap.replace(with: 1, where: w1)
                                    let v2 = base.load8(w * stride + ch), w2 = v2 .> best
                                    best.replace(with: v2, where: w2); tap.replace(with: 2, where: w2)
                                    let v3 = base.load8(w * stride + stride + ch), w3 = v3 .> best
                                    best.replace(with: v3, where: w3); tap.replace(with: 3, where: w3)
                                    yp.pointer.store8(best, o + ch)
                                    UnsafeMutableRawPointer(wp.pointer + o + ch).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: tap), as: SIMD8<UInt8>.self)
                                    ch += 8
                                }
                                for ch in ch..<c {
                                    // strict ">" keeps the first maximum in tap order, as TensorFlow does
                                    var best = base[ch], tap: UInt8 = 0
                                    if base[stride + ch] > best { best = base[stride + ch]; tap = 1 }
                                    if base[w * stride + ch] > best { best = base[w * stride + ch]; tap = 2 }
                                    if base[w * stride + stride + ch] > best { best = base[w * stride + stride + ch]; tap = 3 }
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
        backward(dy, adding: nil, channelOffset: 0)
    }

    /// Backward, plus channels `channelOffset ..< channelOffset + c` of `other` (shaped as the
    /// input but wider): the gradient the pooled tensor gets from elsewhere (the U-Net's skip, read
    /// in place from its decoder's joined gradient), summed in the same pass over memory.
    public func backward(_ dy: Tensor, adding other: Tensor?, channelOffset: Int) -> Tensor {
        precondition(!inputShape.isEmpty, "MaxPool2D \(name): backward before forward")
        precondition(dy.count == winners.count, "MaxPool2D \(name): dy \(dy.shape) vs pooled output")
        let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, ow) = (h / 2, w / 2)
        let stride = other.map { $0.rank == 4 ? $0.shape[3] : 0 } ?? 0
        if let other {
            precondition(other.shape.dropLast() == inputShape.dropLast() && channelOffset >= 0 && channelOffset + c <= stride,
                         "MaxPool2D \(name): cannot add channels \(channelOffset)..<\(channelOffset + c) of \(other.shape) to \(inputShape)")
        }
        // Every input element is written: the winner gets the gradient, the other three taps zero.
        var dx = Tensor.uninitialized(inputShape)
        dx.storage.withUnsafeMutableBufferPointer { db in
            dy.storage.withUnsafeBufferPointer { gb in
                winners.withUnsafeBufferPointer { wb in
                    (other?.storage ?? []).withUnsafeBufferPointer { ob in
                        let (dp, gp, wp) = (SendablePointer(db.baseAddress!), SendablePointer(gb.baseAddress!), SendablePointer(wb.baseAddress!))
                        // (An empty array may still have a base address: test the tensor, not the pointer.)
                        let op = other == nil ? nil : SendablePointer(ob.baseAddress! + channelOffset)
                        // Output row r = (image, i) writes input rows 2i and 2i+1 of that image: rows
                        // 2r and 2r+1 counting across images.
                        Parallel.rows(n * oh, minimumPerPart: max(1, Parallel.elementwiseMinimum / (ow * c))) { range in
                            let first = range.lowerBound
                            ckernels_maxpool_backward(gp.pointer + first * ow * c, wp.pointer + first * ow * c, range.count, ow, c, w,
                                                      op.map { $0.pointer + 2 * first * w * stride }, stride,
                                                      dp.pointer + 2 * first * w * c)
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// The U-Net decoder's channel concatenation (upsampled first, skip second), without copying the
/// upsampled half: `ConvTranspose2D` writes its output into the joined tensor in place and reads
/// its gradient from there; only the skip is copied in, and its gradient is added from there by
/// the pool's backward (`MaxPool2D.backward(_:adding:channelOffset:)`).
public enum Concat {
    /// `source (n, h, w, cs)` into channels `channelOffset ..< channelOffset + cs` of `joined (n, h, w, c)`.
    public static func copy(_ source: Tensor, into joined: inout Tensor, channelOffset: Int) {
        let cs = source.rank == 4 ? source.shape[3] : 0, c = joined.rank == 4 ? joined.shape[3] : 0
        precondition(cs > 0 && source.shape.dropLast() == joined.shape.dropLast() && channelOffset >= 0 && channelOffset + cs <= c,
                     "Concat: cannot place \(source.shape) at channel \(channelOffset) of \(joined.shape)")
        let pixels = source.count / cs
        joined.storage.withUnsafeMutableBufferPointer { ob in
            source.storage.withUnsafeBufferPointer { sb in
                let (op, sp) = (SendablePointer(ob.baseAddress! + channelOffset), SendablePointer(sb.baseAddress!))
                Parallel.rows(pixels, minimumPerPart: max(1, Parallel.elementwiseMinimum / c)) { range in
                    for p in range { (op.pointer + p * c).update(from: sp.pointer + p * cs, count: cs) }
                }
            }
        }
    }
}
