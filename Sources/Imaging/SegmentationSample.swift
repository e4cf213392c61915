import Engine
#if canImport(Glibc)
import Glibc
#endif

/// One image with its binary segmentation mask, at the model's input size.
///
/// Pixels are held compactly: a plane whose every value is exactly `k / 255` (what an 8-bit file
/// decodes to, and a 0/1 mask) is stored as one byte per value, 4x less than Float32; anything
/// else (16-bit files, resized or channel-converted images, edited tensors) stays Float32. Both
/// read back bit for bit as the decoder produced them, so training on them gives the same model.
/// The bytes may live in a read-only mapping of the dataset cache (`DatasetCache`), shared by
/// every process on the host.
public struct SegmentationSample: Sendable, Equatable {
    /// The file stem (`0007` for `images/0007.png`); unique within a dataset.
    public let name: String
    /// The image's `[S, S, C]` values (C = 1 or 3, in [0, 1]).
    public private(set) var imagePixels: SamplePixels
    /// The mask's `[S, S, 1]` values, exactly 0 (background) or 1 (foreground).
    public private(set) var maskPixels: SamplePixels

    public init(name: String, image: Tensor, mask: Tensor) {
        precondition(image.rank == 3 && mask.rank == 3, "SegmentationSample \(name): expected [H, W, C] tensors, got \(image.shape) and \(mask.shape)")
        self.init(name: name, imagePixels: SamplePixels(image), maskPixels: SamplePixels(mask))
    }

    public init(name: String, imagePixels: SamplePixels, maskPixels: SamplePixels) {
        let i = imagePixels.shape, m = maskPixels.shape
        precondition(i.count == 3 && m.count == 3 && i[0] == m[0] && i[1] == m[1] && m[2] == 1,
                     "SegmentationSample \(name): image \(i) and mask \(m) must share H and W, mask with 1 channel")
        self.name = name
        self.imagePixels = imagePixels
        self.maskPixels = maskPixels
    }

    /// `[S, S, C]`, C = 1 or 3, values in [0, 1] (a Float32 copy; setting it stores it compactly when exact).
    public var image: Tensor {
        get { imagePixels.tensor }
        set {
            precondition(newValue.rank == 3 && newValue.shape[0] == maskPixels.shape[0] && newValue.shape[1] == maskPixels.shape[1],
                         "SegmentationSample \(name): image \(newValue.shape) does not fit mask \(maskPixels.shape)")
            imagePixels = SamplePixels(newValue)
        }
    }

    /// `[S, S, 1]` of exactly 0 (background) or 1 (foreground) (a Float32 copy).
    public var mask: Tensor {
        get { maskPixels.tensor }
        set {
            precondition(newValue.shape == maskPixels.shape, "SegmentationSample \(name): mask \(newValue.shape) must be \(maskPixels.shape)")
            maskPixels = SamplePixels(newValue)
        }
    }

    /// Fraction of mask pixels that are foreground.
    public var foregroundFraction: Double {
        var sum = 0.0
        maskPixels.forEachValue { sum += Double($0) }
        return sum / Double(max(1, maskPixels.count))
    }

    /// Heap or mapped bytes held for this sample's pixels.
    public var storedBytes: Int { imagePixels.storedBytes + maskPixels.storedBytes }
}

/// Read-only bytes that many samples view: a heap copy, or a file mapping owned elsewhere (kept
/// alive through `owner`). Never written after creation, so sharing it between threads is safe.
public final class PixelRegion: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    /// What keeps `base` valid (the mapping); nil when this region owns a heap allocation.
    private let owner: AnyObject?
    private let ownsHeap: Bool

    /// A heap copy of `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
        if let src = bytes.baseAddress, bytes.count > 0 { memory.copyMemory(from: src, byteCount: bytes.count) }
        base = UnsafeRawPointer(memory)
        count = bytes.count
        owner = nil
        ownsHeap = true
    }

    /// `count` bytes at `base`, valid while `owner` lives.
    public init(base: UnsafeRawPointer, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
        ownsHeap = false
    }

    deinit { if ownsHeap { UnsafeMutableRawPointer(mutating: base).deallocate() } }

    /// Drops the whole pages of `offset..<offset+count` from this process's resident set when the
    /// region is a file mapping (`madvise(MADV_DONTNEED)`): the page cache keeps them, shared with
    /// every other process mapping the file, and the next read faults them back in without I/O. So
    /// a job's RSS holds the batch it is converting, not the whole mapped dataset. Heap regions
    /// are left alone (dropping their pages would lose the data).
    public func evict(offset: Int, count: Int) {
        guard !ownsHeap, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + offset, end = start + count
        let first = (start + page - 1) / page * page, last = end / page * page
        guard last > first else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED)
    }
}

/// One tensor's values, 8-bit when exact (see `SegmentationSample`), else Float32.
public enum SamplePixels: Sendable, Equatable {
    /// Values `k / 255` stored as `k`, `offset..<offset+count` of a shared region.
    case bytes(shape: [Int], region: PixelRegion, offset: Int)
    case floats(Tensor)

    /// The decoders' 8-bit scale (`(float)v / 255.0f` in the C codecs): byte k reads back as `table[k]`.
    public static let table: [Float] = (0..<256).map { Float($0) / 255 }

    /// Stores `tensor` as bytes when every value is exactly `table[k]` for some k, else as floats.
    public init(_ tensor: Tensor) {
        if let bytes = Self.exactBytes(tensor.storage) {
            let region = bytes.withUnsafeBytes { PixelRegion(copying: $0) }
            self = .bytes(shape: tensor.shape, region: region, offset: 0)
        } else {
            self = .floats(tensor)
        }
    }

    /// The byte for each value when all are exact 8-bit levels; nil at the first that is not.
    public static func exactBytes(_ values: [Float]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: values.count)
        let ok = values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                table.withUnsafeBufferPointer { t in
                    for i in 0..<v.count {
                        let x = v[i]
                        guard x >= 0 && x <= 1 else { return false }
                        let k = Int((x * 255).rounded())
                        guard t[k].bitPattern == x.bitPattern else { return false }
                        o[i] = UInt8(k)
                    }
                    return true
                }
            }
        }
        return ok ? out : nil
    }

    public var shape: [Int] {
        switch self {
        case .bytes(let shape, _, _): return shape
        case .floats(let t): return t.shape
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var isCompact: Bool { if case .bytes = self { return true } else { return false } }

    public var storedBytes: Int {
        switch self {
        case .bytes: return count
        case .floats(let t): return t.count * 4
        }
    }

    /// A Float32 tensor of the values.
    public var tensor: Tensor {
        switch self {
        case .floats(let t): return t
        case .bytes(let shape, _, _):
            let n = count
            let storage = [Float](unsafeUninitializedCapacity: n) { buffer, initialised in
                write(into: buffer.baseAddress!)
                initialised = n
            }
            return Tensor(shape: shape, storage: storage)
        }
    }

    /// Writes the `count` Float32 values at `out` (batch assembly: straight into the batch tensor).
    public func write(into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .floats(let t):
            t.storage.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: $0.count) }
        case .bytes(_, let region, let offset):
            let n = count
            precondition(offset >= 0 && offset + n <= region.count, "SamplePixels: bytes \(offset)..<\(offset + n) outside a region of \(region.count)")
            let src = region.base.advanced(by: offset).assumingMemoryBound(to: UInt8.self)
            Self.table.withUnsafeBufferPointer { t in
                for i in 0..<n { out[i] = t[Int(src[i])] }
            }
        }
    }

    /// After a read: drops the plane's pages from this process's RSS when they are a mapped
    /// dataset cache (see `PixelRegion.evict`); nothing otherwise.
    public func evict() {
        if case .bytes(_, let region, let offset) = self { region.evict(offset: offset, count: count) }
    }

    /// The raw bytes of a compact plane (for the dataset cache); nil for floats.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard case .bytes(_, let region, let offset) = self else { return nil }
        return try body(UnsafeRawBufferPointer(start: region.base.advanced(by: offset), count: count))
    }

    func forEachValue(_ body: (Float) -> Void) {
        switch self {
        case .floats(let t): for v in t.storage { body(v) }
        case .bytes(_, let region, let offset):
            let src = region.base.advanced(by: offset).assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { body(Self.table[Int(src[i])]) }
        }
    }

    public static func == (a: SamplePixels, b: SamplePixels) -> Bool {
        a.tensor == b.tensor
    }
}
