import Foundation
import Pipeline

/// Per-epoch training curves: the baseline's `history.csv` artifact, a compress job's fine-tune history.
public enum History {
    /// What the curves chart draws of one epoch.
    public struct Point: Sendable, Equatable {
        public var epoch: Int
        public var trainLoss: Double
        public var valLoss: Double
        public var valDice: Double
    }

    public static func points(_ records: [EpochRecord]) -> [Point] {
        records.map { Point(epoch: $0.epoch, trainLoss: $0.trainLoss, valLoss: $0.valLoss, valDice: $0.valDice) }
    }

    /// Parses `history.csv` as `OutputFiles.writeHistory` writes it (columns found by header name).
    public static func parseCSV(_ text: String) -> [Point] {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return [] }
        func column(_ name: String) -> Int? { header.firstIndex(of: name) }
        return lines.dropFirst().compactMap { line -> Point? in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            func value(_ name: String) -> Double {
                guard let i = column(name), i < cells.count else { return .nan }
                return Double(cells[i]) ?? .nan
            }
            guard let i = column("epoch"), i < cells.count, let epoch = Int(cells[i]) else { return nil }
            return Point(epoch: epoch, trainLoss: value("train_loss"), valLoss: value("val_loss"), valDice: value("val_dice"))
        }
    }

    /// The baseline's training history from its artifact (empty when not available).
    public static func baseline(_ job: JobRecord, in results: SweepResults) -> [Point] {
        guard let hash = job.artifacts[TrainJob.historyFile],
              let data = FileManager.default.contents(atPath: results.artifactPath(hash)) else { return [] }
        return parseCSV(String(decoding: data, as: UTF8.self))
    }
}
