import Foundation

/// Scratch memory shared by the convolutions of one model (im2col columns and their gradients).
///
/// It bounds memory: a convolution processes its batch in chunks of output pixels so that the
/// columns stay near `capacityFloats` (or `minimumRows` pixels' worth, for very wide layers),
/// whatever the batch and image size. Small chunks are also
/// faster: OpenBLAS copies (packs) the columns once more, and a chunk that still sits in the core's
/// cache when it does costs far less than one that went out to memory (measured with
/// `ranksweep bench engine --threads 1`: 512 KiB chunks trained unet-small 30-35% faster than 32 MiB).
/// One model, one owner thread, one workspace — it is not thread-safe and is never shared between models.
public final class Workspace {
    /// Upper bound on one scratch buffer, in floats (default 128 Ki floats = 512 KiB).
    public let capacityFloats: Int

    /// Default bound, overridable with RANKSWEEP_WORKSPACE_FLOATS (for measurements).
    public static let defaultCapacity: Int = {
        if let text = ProcessInfo.processInfo.environment["RANKSWEEP_WORKSPACE_FLOATS"], let n = Int(text), n > 0 { return n }
        return 128 << 10
    }()
    private var buffers: [UnsafeMutablePointer<Float>?] = []
    private var sizes: [Int] = []

    /// Fewest rows (output pixels) a GEMM gets even when its columns then exceed `capacityFloats`:
    /// OpenBLAS packs the whole right-hand matrix on every call, and with wide layers a GEMM over a
    /// few pixels spent more time packing than multiplying. Tests set it to 1 to force tiny chunks.
    public let minimumRows: Int

    public init(capacityFloats: Int = Workspace.defaultCapacity, minimumRows: Int = 512) {
        precondition(capacityFloats > 0, "Workspace: capacity must be positive")
        precondition(minimumRows > 0, "Workspace: minimum rows must be positive")
        self.capacityFloats = capacityFloats
        self.minimumRows = minimumRows
    }

    deinit {
        for b in buffers { b?.deallocate() }
    }

    /// What a scratch buffer holds; each parallel part has its own buffer of each kind.
    public enum Use: Int {
        case columns, gradientColumns, partialGradients, product
    }

    /// The scratch buffer for `use` by parallel part `part`, at least `count` floats, contents
    /// undefined. Call from the owner thread, before handing buffers to parallel parts.
    public func buffer(_ use: Use, part: Int, count: Int) -> UnsafeMutablePointer<Float> {
        precondition(part >= 0 && part < 64, "Workspace: part \(part) out of range")
        return buffer(use.rawValue * 64 + part, count: count)
    }

    /// One zeroed buffer of `count` floats per part, for parts that each sum their own share of a
    /// gradient (the caller adds them in part order, so the result does not depend on timing).
    func zeroedPartials(parts: Int, count: Int) -> [SendablePointer<Float>] {
        (0..<parts).map { part in
            let p = buffer(.partialGradients, part: part, count: count)
            p.initialize(repeating: 0, count: count)
            return SendablePointer(p)
        }
    }

    /// Scratch buffer `slot` (any small index; one per concurrent user) of at least `count` floats,
    /// contents undefined. Call from the owner thread, before handing buffers to parallel parts.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while buffers.count <= slot { buffers.append(nil); sizes.append(0) }
        if sizes[slot] < count || buffers[slot] == nil {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            sizes[slot] = count
        }
        return buffers[slot]!
    }

    /// Rows of a `rows x rowLength` matrix to process at a time: as many as fit in one buffer, but
    /// at least `minimumRows`.
    public func rowsPerChunk(rowLength: Int, rows: Int) -> Int {
        max(1, min(rows, max(minimumRows, capacityFloats / max(rowLength, 1))))
    }
}
