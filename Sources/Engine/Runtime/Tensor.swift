/// A dense float32 tensor stored row-major (the last axis varies fastest).
///
/// Images and activations are NHWC (batch, height, width, channels); convolution kernels are HWIO
/// (kh, kw, cin, cout), as Keras stores them, so a kernel read as a `(kh*kw*cin) x cout` matrix needs
/// no copy. A `Tensor` is a value: copies share storage until one is written (copy-on-write), so a
/// tensor can be sent between threads; the layers that compute on it own their own buffers.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var storage: [Float]

    /// A tensor of `shape` holding `storage` (row-major); their sizes must agree.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "Tensor: shape \(shape) holds \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of `shape` with every element `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, storage: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// A tensor of `shape` whose elements are not set: for outputs that the caller writes in full.
    public static func uninitialized(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, storage: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
    }

    /// Number of elements.
    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// Element at a full multi-index (slow; for tests and small bookkeeping, never hot loops).
    public subscript(index: Int...) -> Float {
        get { storage[flatIndex(index)] }
        set { storage[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) for shape \(shape)")
        var flat = 0
        for (i, dim) in zip(index, shape) {
            precondition(i >= 0 && i < dim, "Tensor: index \(index) out of bounds for shape \(shape)")
            flat = flat * dim + i
        }
        return flat
    }

    /// Largest absolute elementwise difference to `other` (same shape).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: shapes \(shape) and \(other.shape) differ")
        var worst: Float = 0
        for i in 0..<storage.count { worst = max(worst, abs(storage[i] - other.storage[i])) }
        return worst
    }

    /// True when no element is NaN or infinite.
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }
}

extension Tensor {
    /// NHWC accessors; preconditions name the layout expected.
    public var batch: Int { precondition(rank == 4, "expected NHWC, got \(shape)"); return shape[0] }
    public var height: Int { precondition(rank == 4, "expected NHWC, got \(shape)"); return shape[1] }
    public var width: Int { precondition(rank == 4, "expected NHWC, got \(shape)"); return shape[2] }
    public var channels: Int { precondition(rank == 4, "expected NHWC, got \(shape)"); return shape[3] }

    /// Images `range` of an NHWC batch, as a new tensor.
    public func images(_ range: Range<Int>) -> Tensor {
        let per = count / batch
        return Tensor(shape: [range.count] + shape.dropFirst(),
                      storage: Array(storage[(range.lowerBound * per)..<(range.upperBound * per)]))
    }

    /// Stacks equally shaped NHWC batches (or single images of shape HWC) along the batch axis.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "Tensor.stack: nothing to stack")
        let inner = parts[0].rank == 4 ? Array(parts[0].shape.dropFirst()) : parts[0].shape
        var total = 0
        var storage = [Float]()
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts {
            let pInner = p.rank == 4 ? Array(p.shape.dropFirst()) : p.shape
            precondition(pInner == inner, "Tensor.stack: shape \(p.shape) does not match \(inner)")
            total += p.rank == 4 ? p.shape[0] : 1
            storage.append(contentsOf: p.storage)
        }
        return Tensor(shape: [total] + inner, storage: storage)
    }
}

extension Tensor {
    /// `f` applied elementwise to two tensors of the same shape, into a new buffer in one pass.
    @inline(__always)
    public static func mapping(_ a: Tensor, _ b: Tensor, _ f: @escaping @Sendable (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "Tensor.mapping: shapes \(a.shape) and \(b.shape) differ")
        var out = Tensor.uninitialized(a.shape)
        a.storage.withUnsafeBufferPointer { ab in
            b.storage.withUnsafeBufferPointer { bb in
                out.storage.withUnsafeMutableBufferPointer { ob in
                    let (ap, bp, op) = (SendablePointer(ab.baseAddress!), SendablePointer(bb.baseAddress!), SendablePointer(ob.baseAddress!))
                    Parallel.rows(ab.count) { range in
                        for i in range { op.pointer[i] = f(ap.pointer[i], bp.pointer[i]) }
                    }
                }
            }
        }
        return out
    }

    /// `self += other`, elementwise, in place (split across threads for large tensors).
    public mutating func add(_ other: Tensor) {
        precondition(shape == other.shape, "Tensor.add: shapes \(shape) and \(other.shape) differ")
        storage.withUnsafeMutableBufferPointer { sb in
            other.storage.withUnsafeBufferPointer { ob in
                let (sp, op) = (SendablePointer(sb.baseAddress!), SendablePointer(ob.baseAddress!))
                Parallel.rows(sb.count) { range in
                    for i in range { sp.pointer[i] += op.pointer[i] }
                }
            }
        }
    }
}
