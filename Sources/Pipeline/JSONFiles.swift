import Basics
import Engine
import Foundation

/// JSON and CSV outputs, written atomically (temporary file + rename).
public enum OutputFiles {
    public static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(encoder.encode(value), to: path)
    }

    /// Compact JSON with sorted keys, for model metadata: the same values give the same bytes.
    public static func metadataJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Saves a job's model (`UNet.save`); callers pass metadata JSON made with `metadataJSON`, so the
    /// same weights and settings give the same file byte for byte (a resumed job's model equals an
    /// undisturbed one's).
    public static func saveModel(_ model: UNet, to path: String, metadata: [String: String]) throws {
        try model.save(to: path, metadata: metadata)
    }

    public static func readJSON<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelFileError(path: path, reason: "cannot read file")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try decoder.decode(type, from: data) } catch {
            throw ModelFileError(path: path, reason: "not a valid \(T.self) JSON file (\(error))")
        }
    }

    public static func writeHistory(_ history: [EpochRecord], to path: String) throws {
        var table = CSVTable(header: EpochRecord.csvHeader)
        for r in history { table.append(r.csvRow) }
        try table.write(to: path)
    }

    /// Creates `dir` (and parents); a clear error when it cannot.
    public static func makeDirectory(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ModelFileError(path: dir, reason: "cannot create output folder (\(error.localizedDescription))")
        }
    }
}
