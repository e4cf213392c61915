/// The protocol-buffers wire format, written by hand: just what an ONNX file needs (varints,
/// length-delimited strings, bytes and nested messages, fixed 32-bit floats, packed int64s).
/// Fields are written in the order the caller gives; readers accept any order.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private enum WireType: UInt64 { case varint = 0, fixed32 = 5, lengthDelimited = 2 }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wire: WireType) { varint(UInt64(field) << 3 | wire.rawValue) }

    /// int32, int64 and enum fields (negative values as 10-byte two's complement, as protobuf does).
    mutating func int(_ field: Int, _ value: Int) {
        key(field, .varint)
        varint(UInt64(bitPattern: Int64(value)))
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes<C: Collection>(_ field: Int, _ value: C) where C.Element == UInt8 {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    /// A repeated int64 field, packed (one length-delimited run of varints).
    mutating func packedInts(_ field: Int, _ values: [Int]) {
        var run = ProtobufWriter()
        for v in values { run.varint(UInt64(bitPattern: Int64(v))) }
        bytes(field, run.bytes)
    }

    /// A nested message, built by `body` into its own writer.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }
}
