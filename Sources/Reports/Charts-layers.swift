import Compression
import Foundation

extension Charts {
    // MARK: 3. Per-layer rank chosen by each job

    static func ranks(_ results: SweepResults) -> Chart {
        let done = results.compressJobs.filter { $0.compressResult != nil }
        let layers = done.first?.compressResult?.summary.layers ?? []
        let multiSeed = Set(results.jobs.compactMap(\.seed)).count > 1
        var rowLabels = ["full rank"], values: [[Double?]] = [layers.map { _ in nil }], texts = [layers.map { String($0.fullRank) }]
        for job in done {
            let spec = job.compressSpec
            let setting = spec?.rank.map { "r=\($0)" } ?? spec?.tau.map { "tau=\(ResultsTable.number($0))" } ?? ""
            rowLabels.append("\((spec?.method ?? "?").uppercased()) \(setting)" + (multiSeed ? " s\(job.seed ?? 0)" : ""))
            let decisions = Dictionary((job.compressResult?.summary.layers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            values.append(layers.map { l in
                guard let d = decisions[l.name], d.skipReason != .outputHead else { return nil }
                return Double(d.rank ?? d.fullRank) / Double(max(1, d.fullRank))
            })
            texts.append(layers.map { l in
                guard let d = decisions[l.name] else { return "" }
                if let rank = d.rank { return String(rank) }
                if case .slowerThanFull = d.skipReason { return "slower" }
                return d.skipReason == .outputHead ? "head" : "full"
            })
        }
        let panel = HeatMapPanel(title: "3. Rank kept in each layer, per job", rowLabels: rowLabels, columnLabels: layers.map(\.name),
                                 values: values, texts: texts, colourLabel: "rank kept / layer's full rank")
        let cellH = 22.0
        let r = PlotRect(x: 150, y: 125, width: width - 180, height: cellH * Double(rowLabels.count))
        let doc = SVGDocument(width: width, height: r.bottom + 60, title: panel.title)
        if layers.isEmpty {
            ChartDrawing.title(doc, panel.title, x: 20, y: 30)
            doc.text(width / 2, 80, "no finished compression jobs yet", size: 12, anchor: .middle, fill: Palette.axis)
        } else {
            panel.draw(doc, in: r)
        }
        return Chart(id: "ranks", title: panel.title, caption:
            "Rows are finished compression jobs, columns the model's convolutions in forward order; each cell holds the rank that layer kept "
            + "(\"full\": kept as a full convolution because the factorised pair would not save parameters; \"slower\": kept full because the pair, "
            + "timed against the full layer at compression time, was not faster; \"head\": the 1x1 output head, never factorised). "
            + "The first row gives each layer's full rank; the colour is rank / full rank. SVD asks for the same rank everywhere, ARSVD adapts it per layer.",
            svg: doc.render())
    }

    // MARK: 4. Singular-value energy curves with the tau thresholds

    /// Up to `count` layers spread over the network (by forward position) among those with at least two singular values.
    static func sampleLayers(_ layers: [LayerDecision], count: Int = 4) -> [LayerDecision] {
        let eligible = layers.filter { $0.singularValues.count >= 2 }
        guard eligible.count > count else { return eligible }
        let picks = (0..<count).map { Int((Double($0) * Double(eligible.count - 1) / Double(count - 1)).rounded()) }
        return Array(Set(picks)).sorted().map { eligible[$0] }
    }

    static func energy(_ results: SweepResults) -> Chart {
        let layers = sampleLayers(results.compressJobs.first { $0.compressResult != nil }?.compressResult?.summary.layers ?? [])
        let series = layers.enumerated().map { i, layer -> Series in
            let squares = layer.singularValues.map { Double($0) * Double($0) }
            let total = max(squares.reduce(0, +), .leastNormalMagnitude)
            var cumulative = 0.0
            var points: [(x: Double, y: Double)] = [(0, 0)]
            for (k, s) in squares.enumerated() {
                cumulative += s
                points.append((100 * Double(k + 1) / Double(squares.count), 100 * cumulative / total))
            }
            var s = Series(name: "\(layer.name) (full rank \(layer.fullRank))", colour: Palette.series[(i + 2) % Palette.series.count],
                           points: points, markers: squares.count <= 40 ? .circle : nil)
            s.tooltips = points.indices.map { k in String(format: "%@: rank %d keeps %.1f%% of the energy", layer.name, k, points[k].y) }
            return s
        }
        let taus = Array(Set(results.compressJobs.compactMap { $0.compressSpec?.tau })).sorted()
        var panel = XYPanel(title: "4. Singular-value energy of sample layers (baseline kernels)",
                            xLabel: "rank kept (% of the layer's full rank)", yLabel: "energy kept Σ s² up to rank (%)", series: series)
        panel.references = taus.map {
            ReferenceLine(value: 100 * $0, label: "tau = \(ResultsTable.number($0))", colour: Palette.arsvd, dash: "4 3", labelAtStart: true)
        }
        panel.xDomain = (0, 100)
        panel.yDomain = (0, 100)
        let doc = SVGDocument(width: width, height: 420, title: panel.title)
        let r = PlotRect(x: 70, y: 40, width: 520, height: 320)
        panel.draw(doc, in: r)
        var legend = series.map(\.legendEntry)
        legend += panel.references.map { LegendEntry("ARSVD threshold " + $0.label, colour: $0.colour, sample: .line(dash: $0.dash)) }
        ChartDrawing.legend(doc, legend, x: r.right + 20, y: r.y)
        return Chart(id: "energy", title: panel.title, caption:
            "The cumulative share of squared singular values (energy) the first r singular values of a layer's kernel hold, for up to four layers spread over the network, "
            + "with r as a percentage of the layer's full rank. ARSVD keeps, in every layer, the smallest rank whose curve reaches tau (the dashed orange lines): "
            + "a flat-spectrum layer needs a large share of its rank, a steep one only a few singular values.",
            svg: doc.render())
    }
}
