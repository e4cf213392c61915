import Basics
import Foundation

/// Renders training events for a person through the one progress display: a bar per epoch with
/// the epoch's ETA and the whole run's (to the last epoch; early stopping may end it sooner).
public func trainingEventPrinter(_ progress: ProgressDisplay, label: String = "epoch") -> (TrainingEvent) -> Void {
    var epochs = 0
    var stepsPerEpoch = 1
    var trainingETA = ETAEstimator()
    var epochETA = ETAEstimator()
    var currentEpoch = 0
    // Epoch lines are progress: -q (or --log-level warn/error) leaves only the results.
    let say: (String) -> Void = { if Log.level <= .info { progress.line($0) } }
    return { event in
        switch event {
        case let .started(total, steps, trainImages, valImages, momentum):
            epochs = total
            stepsPerEpoch = max(1, steps)
            trainingETA = ETAEstimator()
            say("training on \(trainImages) images (\(steps) steps per epoch), validating on \(valImages); BatchNorm momentum \(String(format: "%.3f", momentum))")
        case let .step(epoch, step, steps, loss):
            if epoch != currentEpoch { currentEpoch = epoch; epochETA = ETAEstimator() }
            let stepsDone = Double((epoch - 1) * stepsPerEpoch + step)
            let all = trainingETA.secondsLeft(done: stepsDone, total: Double(epochs * stepsPerEpoch))
            progress.update("\(label) \(epoch)/\(epochs)", done: step, total: steps,
                            eta: epochETA.secondsLeft(done: Double(step), total: Double(steps)),
                            detail: (all.map { "(all epochs: \(formatDuration($0)))  " } ?? "") + String(format: "loss %.4f", loss))
        case let .epochFinished(r):
            say(String(format: "\(label) %d/%d  loss %.4f dice %.4f iou %.4f | val loss %.4f dice %.4f iou %.4f | lr %.1e | %.1f s",
                                 r.epoch, epochs, r.trainLoss, r.trainDice, r.trainIoU, r.valLoss, r.valDice, r.valIoU, r.learningRate, r.seconds))
        case let .note(text):
            say(text)
        }
    }
}
