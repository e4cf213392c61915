import Basics
import Foundation

/// A problem with a model or tensor file, naming the file. Thrown, never a crash.
public struct ModelFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}

/// The safetensors format (as Python's `safetensors` reads and writes it): an 8-byte little-endian
/// header length, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}`,
/// then the raw little-endian data. ranksweep reads and writes float32 (`F32`) only.
public enum SafeTensors {
    /// Reads every tensor and the metadata; any inconsistency is a `ModelFileError` naming the file.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelFileError(path: path, reason: "cannot read file")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("not a safetensors file (only \(data.count) bytes)") }
        var headerLength: UInt64 = 0
        for (i, byte) in data.prefix(8).enumerated() { headerLength |= UInt64(byte) << UInt64(8 * i) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw fail("truncated or not a safetensors file (header length \(headerLength), file \(data.count) bytes)")
        }
        let headerStart = data.startIndex + 8
        let headerData = data[headerStart..<(headerStart + Int(headerLength))]
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let body = data[(headerStart + Int(headerLength))...]
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2 else {
                throw fail("tensor '\(name)' has a malformed header entry")
            }
            guard dtype == "F32" else { throw fail("tensor '\(name)' has dtype \(dtype); only F32 is supported") }
            guard shape.allSatisfy({ $0 >= 0 }), (entry["shape"] as? [Any])?.count == shape.count else {
                throw fail("tensor '\(name)' has an invalid shape")
            }
            let count = shape.reduce(1, *)
            let (start, end) = (offsets[0], offsets[1])
            guard start >= 0, end >= start, end <= body.count else {
                throw fail("tensor '\(name)' data [\(start), \(end)) lies outside the \(body.count)-byte body (truncated file?)")
            }
            guard end - start == count * 4 else {
                throw fail("tensor '\(name)' of shape \(shape) needs \(count * 4) bytes, header gives \(end - start)")
            }
            var storage = [Float](repeating: 0, count: count)
            storage.withUnsafeMutableBytes { dst in
                body.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<end]))
                }
            }
            // The format is little-endian; so is every platform ranksweep runs on.
            tensors[name] = Tensor(shape: shape, storage: storage)
        }
        return (tensors, metadata)
    }

    /// Writes tensors (sorted by name, 8-byte aligned header) and metadata, atomically:
    /// a temporary file in the same folder, then a rename.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]] as [String: Any]
            offset += t.count * 4
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(headerBytes)
        for name in names { tensors[name]!.storage.withUnsafeBytes { out.append(contentsOf: $0) } }
        try AtomicFile.write(out, to: path)
    }
}

