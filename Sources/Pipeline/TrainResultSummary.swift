import Foundation

extension TrainResult {
    /// What `ranksweep train` says at the end: the test scores, why training stopped, the
    /// recalibration's effect and the files written.
    public func summaryLines(outDir: String) -> [String] {
        let why = switch stoppedBy {
        case .epochs: "the --epochs limit"
        case .earlyStopping: "early stopping"
        case .interrupted: "a signal"
        }
        var lines = [String(format: "test (%d images): dice %.4f iou %.4f loss %.4f (batch statistics: dice %.4f); ran %d epoch(s), stopped by %@, best validation loss at epoch %d; %.1f s",
                            test.images, test.dice, test.iou, test.loss, testWithBatchStatistics.dice, epochsRun, why, bestEpoch, totalSeconds)]
        if let before = testBeforeRecalibration {
            lines.append(String(format: "BatchNorm recalibration: test dice %.4f -> %.4f", before.dice, test.dice))
        }
        lines.append("wrote \(outDir)/\(TrainJob.modelFile), \(TrainJob.historyFile), \(TrainJob.metricsFile)")
        return lines
    }
}
