import Foundation
import Pipeline

extension Charts {
    // MARK: 5. Training and fine-tuning curves

    static func curves(_ results: SweepResults) -> Chart {
        let multiSeed = Set(results.jobs.compactMap(\.seed)).count > 1
        var loss: [Series] = [], dice: [Series] = [], legend: [LegendEntry] = []
        var baselineEpochs: [String: Int] = [:]
        for (i, job) in results.trainJobs.enumerated() {
            let history = History.baseline(job, in: results)
            guard !history.isEmpty else { continue }
            baselineEpochs[job.id] = history.count
            let name = "baseline" + (multiSeed ? " s\(job.seed ?? 0)" : "")
            let colour = i == 0 ? Palette.baseline : Palette.series[(i + 6) % Palette.series.count]
            var train = Series(name: name + " (train loss)", colour: colour, points: history.map { (Double($0.epoch), $0.trainLoss) }, dash: "4 3")
            train.inLegend = false
            loss += [train, Series(name: name, colour: colour, points: history.map { (Double($0.epoch), $0.valLoss) })]
            dice.append(Series(name: name, colour: colour, points: history.map { (Double($0.epoch), $0.valDice) }))
            legend.append(LegendEntry(name + " training", colour: colour, sample: .line(dash: nil)))
        }
        for (i, job) in results.compressJobs.enumerated() {
            guard let r = job.compressResult, !r.fineTuneHistory.isEmpty else { continue }
            let offset = Double(job.compressSpec.flatMap { baselineEpochs[$0.baselineJob] } ?? 0)
            let spec = job.compressSpec
            let name = "\((spec?.method ?? "?").uppercased()) " + (spec?.rank.map { "r=\($0)" } ?? spec?.rankText.map { "r=\($0)" } ?? spec?.tau.map { "tau=\(ResultsTable.number($0))" } ?? "")
                + (multiSeed ? " s\(job.seed ?? 0)" : "")
            let colour = Palette.series[i % Palette.series.count]
            loss.append(Series(name: name, colour: colour, points: r.fineTuneHistory.map { (offset + Double($0.epoch), $0.valLoss) }, markers: .circle))
            dice.append(Series(name: name, colour: colour, points: r.fineTuneHistory.map { (offset + Double($0.epoch), $0.valDice) }, markers: .circle))
            legend.append(LegendEntry(name + " fine-tuning", colour: colour, sample: .marker(.circle)))
        }
        let epochs = (loss + dice).flatMap { $0.points.map(\.x) }
        let xd = (0.0, max(1, epochs.max() ?? 1))
        var lossPanel = XYPanel(title: "5. Loss and validation Dice per epoch", xLabel: "epoch (fine-tuning continues after the baseline's)",
                                yLabel: "loss (BCE + Dice)", series: loss)
        lossPanel.xDomain = xd
        var dicePanel = XYPanel(title: "", xLabel: "epoch", yLabel: "validation Dice (0–1)", series: dice)
        dicePanel.xDomain = xd
        let legendRows = Int((Double(legend.count) / 3).rounded(.up))
        let doc = SVGDocument(width: width, height: 390 + Double(legendRows) * 16 + 20, title: lossPanel.title)
        lossPanel.draw(doc, in: PlotRect(x: 70, y: 40, width: 330, height: 280))
        dicePanel.draw(doc, in: PlotRect(x: 500, y: 40, width: 330, height: 280))
        doc.line(70, 372, 88, 372, stroke: Palette.baseline, width: 2)
        doc.text(94, 376, "validation (solid)", size: 10.5)
        doc.line(210, 372, 228, 372, stroke: Palette.baseline, width: 2, dash: "4 3")
        doc.text(234, 376, "training loss (dashed, baseline)", size: 10.5)
        for column in 0 ..< 3 {
            let entries = legend.enumerated().filter { $0.offset % 3 == column }.map(\.element)
            ChartDrawing.legend(doc, entries, x: 70 + Double(column) * 260, y: 386)
        }
        return Chart(id: "curves", title: lossPanel.title, caption:
            "Left: loss per epoch (solid: validation, dashed: the baseline's training loss); right: validation Dice per epoch. "
            + "The baseline's training comes first; each compression job's fine-tuning epochs follow from the baseline's last epoch, one colour per job.",
            svg: doc.render())
    }
}
