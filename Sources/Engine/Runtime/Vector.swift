/// Eight-float vector loads and stores for the engine's elementwise loops. Plain loops over
/// `SendablePointer`s do not vectorise (the compiler cannot rule out aliasing, and selects become
/// branches); these make the vector width explicit. Unaligned: tensors start anywhere.
typealias Float8 = SIMD8<Float>

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func load8(_ offset: Int) -> Float8 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Float8.self)
    }

    @inline(__always) func store8(_ value: Float8, _ offset: Int) {
        UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: Float8.self)
    }
}
