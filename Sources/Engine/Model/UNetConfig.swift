/// The architecture of a U-Net, saved in every model file's metadata so the file describes itself.
public struct UNetConfig: Codable, Sendable, Equatable {
    /// Input channels: 1 (gray) or 3 (RGB).
    public var inputChannels: Int
    /// Filters of the first level; level L has `baseFilters * 2^L`, the bottleneck `baseFilters * 2^depth`.
    public var baseFilters: Int
    /// Number of pooling levels (default 4). Input height and width must be multiples of 2^depth.
    public var depth: Int
    /// BatchNorm momentum for the running statistics (Keras default 0.99).
    public var bnMomentum: Float

    public init(inputChannels: Int = 3, baseFilters: Int = 16, depth: Int = 4, bnMomentum: Float = 0.99) {
        self.inputChannels = inputChannels
        self.baseFilters = baseFilters
        self.depth = depth
        self.bnMomentum = bnMomentum
    }

    /// A one-line reason this configuration cannot be built, or nil when it can.
    public var problem: String? {
        if inputChannels != 1 && inputChannels != 3 { return "input channels must be 1 (gray) or 3 (RGB), got \(inputChannels): images are fed as one or the other (train with --channels 1 or 3)" }
        if baseFilters < 1 { return "base filters must be at least 1, got \(baseFilters)" }
        if depth < 1 || depth > 8 { return "depth must be between 1 and 8, got \(depth)" }
        if !(bnMomentum >= 0 && bnMomentum < 1) { return "BatchNorm momentum must be in [0, 1), got \(bnMomentum)" }
        return nil
    }

    public func filters(level: Int) -> Int { baseFilters << level }
    public var bottleneckFilters: Int { baseFilters << depth }
}
