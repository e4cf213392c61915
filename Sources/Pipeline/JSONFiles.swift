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
