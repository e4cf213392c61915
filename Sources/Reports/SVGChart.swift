import Foundation

/// One legend entry: a coloured marker or line sample and its text.
public struct LegendEntry: Sendable {
    public enum Sample: Sendable { case marker(MarkerShape), line(dash: String?), box }
    public var label: String
    public var colour: String
    public var sample: Sample
    public init(_ label: String, colour: String, sample: Sample) { self.label = label; self.colour = colour; self.sample = sample }
}

/// Drawing helpers shared by every chart: axes with ticks, grid and labels; legends; titles.
public enum ChartDrawing {
    /// Frame, grid lines, ticks with labels, and the axis titles (which carry the units).
    public static func axes(_ doc: SVGDocument, _ r: PlotRect, x: LinearScale?, y: LinearScale,
                            xLabel: String, yLabel: String, xTicks: Int = 6, yTicks: Int = 5, xLabelOffset: Double = 34) {
        let yt = y.ticks(yTicks)
        let yStep = yt.count > 1 ? yt[1] - yt[0] : 1
        for v in yt {
            let py = y(v)
            doc.line(r.x, py, r.right, py, stroke: Palette.grid)
            doc.text(r.x - 6, py + 4, LinearScale.label(v, step: yStep), size: 10, anchor: .end, fill: Palette.axis)
        }
        if let x {
            let xt = x.ticks(xTicks)
            let xStep = xt.count > 1 ? xt[1] - xt[0] : 1
            for v in xt {
                let px = x(v)
                doc.line(px, r.y, px, r.bottom, stroke: Palette.grid)
                doc.line(px, r.bottom, px, r.bottom + 4, stroke: Palette.axis)
                doc.text(px, r.bottom + 16, LinearScale.label(v, step: xStep), size: 10, anchor: .middle, fill: Palette.axis)
            }
        }
        doc.line(r.x, r.bottom, r.right, r.bottom, stroke: Palette.axis)
        doc.line(r.x, r.y, r.x, r.bottom, stroke: Palette.axis)
        doc.text(r.x + r.width / 2, r.bottom + xLabelOffset, xLabel, size: 11.5, anchor: .middle)
        doc.text(r.x - 42, r.y + r.height / 2, yLabel, size: 11.5, anchor: .middle, rotate: -90)
    }

    public static func title(_ doc: SVGDocument, _ text: String, x: Double, y: Double) {
        doc.text(x, y, text, size: 13, anchor: .start, bold: true)
    }

    /// A vertical legend whose top-left corner is (x, y); returns its height.
    @discardableResult
    public static func legend(_ doc: SVGDocument, _ entries: [LegendEntry], x: Double, y: Double, rowHeight: Double = 16) -> Double {
        for (i, e) in entries.enumerated() {
            let cy = y + Double(i) * rowHeight + rowHeight / 2
            switch e.sample {
            case .marker(let shape): doc.marker(shape, x + 9, cy, size: 4, fill: e.colour)
            case .line(let dash): doc.line(x, cy, x + 18, cy, stroke: e.colour, width: 2, dash: dash)
            case .box: doc.rect(x + 3, cy - 5, 12, 10, fill: e.colour)
            }
            doc.text(x + 24, cy + 4, e.label, size: 10.5)
        }
        return Double(entries.count) * rowHeight
    }
}

/// A data series of an x/y panel.
public struct Series: Sendable {
    public var name: String
    public var colour: String
    public var points: [(x: Double, y: Double)]
    public var line: Bool = true
    public var markers: MarkerShape? = nil
    public var dash: String? = nil
    public var width: Double = 1.6
    /// One tooltip per point (hover text in a browser), or empty.
    public var tooltips: [String] = []
    /// Short text drawn beside each point, or empty.
    public var pointLabels: [String] = []
    public var inLegend: Bool = true

    public init(name: String, colour: String, points: [(x: Double, y: Double)], line: Bool = true, markers: MarkerShape? = nil,
                dash: String? = nil) {
        self.name = name; self.colour = colour; self.points = points; self.line = line; self.markers = markers; self.dash = dash
    }

    var legendEntry: LegendEntry {
        LegendEntry(name, colour: colour, sample: markers.map { .marker($0) } ?? .line(dash: dash))
    }
}

/// A horizontal reference line across a panel (a baseline score, a threshold), labelled at its right end.
public struct ReferenceLine: Sendable {
    public var value: Double
    public var label: String
    public var colour: String
    public var dash: String?
    /// Label at the left end instead of the right (where the data is sparse).
    public var labelAtStart = false
    public init(value: Double, label: String, colour: String, dash: String? = "6 4", labelAtStart: Bool = false) {
        self.value = value; self.label = label; self.colour = colour; self.dash = dash; self.labelAtStart = labelAtStart
    }

    func draw(_ doc: SVGDocument, _ r: PlotRect, _ y: LinearScale) {
        doc.line(r.x, y(value), r.right, y(value), stroke: colour, width: 1.5, dash: dash)
        if labelAtStart {
            doc.text(r.x + 4, y(value) - 4, label, size: 10, anchor: .start, fill: colour)
        } else {
            doc.text(r.right - 4, y(value) - 4, label, size: 10, anchor: .end, fill: colour)
        }
    }
}

/// Scatter and line plots: x and y axes with units, series, reference lines.
public struct XYPanel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var references: [ReferenceLine] = []
    /// Fixed domains; nil = fitted to the data (and the reference lines).
    public var xDomain: (Double, Double)? = nil
    public var yDomain: (Double, Double)? = nil
    /// Limits a fitted domain never crosses.
    public var xBounds: (Double, Double) = (-.infinity, .infinity)
    public var yBounds: (Double, Double) = (-.infinity, .infinity)

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    public func draw(_ doc: SVGDocument, in r: PlotRect) {
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        let xd = xDomain ?? LinearScale.domain(xs, within: xBounds)
        let yd = yDomain ?? LinearScale.domain(ys, including: references.map(\.value), within: yBounds)
        let x = LinearScale(lower: xd.0, upper: xd.1, from: r.x, to: r.right)
        let y = LinearScale(lower: yd.0, upper: yd.1, from: r.bottom, to: r.y)
        ChartDrawing.title(doc, title, x: r.x - 45, y: r.y - 12)
        ChartDrawing.axes(doc, r, x: x, y: y, xLabel: xLabel, yLabel: yLabel)
        if series.allSatisfy({ $0.points.isEmpty }) {
            doc.text(r.x + r.width / 2, r.y + r.height / 2, "no finished jobs yet", size: 12, anchor: .middle, fill: Palette.axis)
        }
        for ref in references where ref.value >= yd.0 && ref.value <= yd.1 { ref.draw(doc, r, y) }
        var labels = LabelPlacer(bounds: r)
        for s in series {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (x($0.x), y($0.y)) }
            if s.line { doc.polyline(pts, stroke: s.colour, width: s.width, dash: s.dash) }
            guard let shape = s.markers else { continue }
            for (i, p) in pts.enumerated() {
                doc.marker(shape, p.0, p.1, fill: s.colour, tooltip: i < s.tooltips.count ? s.tooltips[i] : nil)
                labels.avoid(x: p.0, y: p.1)
            }
        }
        for s in series where s.markers != nil {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (x($0.x), y($0.y)) }
            for (i, p) in pts.enumerated() where i < s.pointLabels.count {
                let (lx, ly, anchor) = labels.place(s.pointLabels[i], x: p.0, y: p.1)
                doc.text(lx, ly, s.pointLabels[i], size: 9.5, anchor: anchor, fill: Palette.axis)
            }
        }
    }
}

/// Grouped vertical bars: one group per category, one bar per series; optional reference lines.
public struct BarPanel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var categories: [String]
    public var seriesNames: [String]
    public var colours: [String]
    /// `values[category][series]`, nil = no bar (job not finished).
    public var values: [[Double?]]
    public var references: [ReferenceLine] = []
    public var yDomain: (Double, Double)? = nil
    public var yBounds: (Double, Double) = (-.infinity, .infinity)
    /// Text under a category whose values are all missing (e.g. "failed").
    public var missingNotes: [String] = []

    public init(title: String, xLabel: String, yLabel: String, categories: [String], seriesNames: [String],
                colours: [String], values: [[Double?]]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.categories = categories
        self.seriesNames = seriesNames; self.colours = colours; self.values = values
    }

    public func draw(_ doc: SVGDocument, in r: PlotRect) {
        let all = values.flatMap { $0.compactMap { $0 } }
        let yd = yDomain ?? LinearScale.domain(all, including: [0] + references.map(\.value), pad: 0.02, within: yBounds)
        let y = LinearScale(lower: yd.0, upper: yd.1, from: r.bottom, to: r.y)
        ChartDrawing.title(doc, title, x: r.x - 45, y: r.y - 12)
        let groupWidth = r.width / Double(max(1, categories.count))
        let barWidth = min(28, groupWidth * 0.8 / Double(max(1, seriesNames.count)))
        // Category names slant when they would not fit side by side (about 6 px a character).
        let longest = Double(categories.map(\.count).max() ?? 0) * 6
        let slant = longest > groupWidth
        ChartDrawing.axes(doc, r, x: nil, y: y, xLabel: xLabel, yLabel: yLabel, xLabelOffset: slant ? 30 + longest * 0.5 : 34)
        for (c, name) in categories.enumerated() {
            let centre = r.x + (Double(c) + 0.5) * groupWidth
            let left = centre - barWidth * Double(seriesNames.count) / 2
            for s in seriesNames.indices {
                guard s < values[c].count, let v = values[c][s], v.isFinite else { continue }
                let top = y(max(v, yd.0))
                doc.rect(left + Double(s) * barWidth, top, barWidth - 1, y(max(yd.0, 0)) - top, fill: colours[s % colours.count],
                         tooltip: "\(name) \(seriesNames[s]): \(String(format: "%.4f", v))")
            }
            if values[c].allSatisfy({ $0 == nil }), c < missingNotes.count {
                doc.text(centre, r.bottom - 6, missingNotes[c], size: 10, anchor: .middle, fill: "#b00020")
            }
            doc.text(slant ? centre + 4 : centre, r.bottom + 14, name, size: 10, anchor: slant ? .end : .middle,
                     fill: Palette.axis, rotate: slant ? -30 : nil)
        }
        for ref in references where ref.value >= yd.0 && ref.value <= yd.1 { ref.draw(doc, r, y) }
    }
}

/// A grid of coloured cells with a number in each: rows x columns, colour by a value in [0, 1].
public struct HeatMapPanel: Sendable {
    public var title: String
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// Colour value in [0, 1] per cell; nil = empty cell (grey).
    public var values: [[Double?]]
    /// Text per cell.
    public var texts: [[String]]
    public var colourLabel: String

    public init(title: String, rowLabels: [String], columnLabels: [String], values: [[Double?]], texts: [[String]], colourLabel: String) {
        self.title = title; self.rowLabels = rowLabels; self.columnLabels = columnLabels
        self.values = values; self.texts = texts; self.colourLabel = colourLabel
    }

    /// White (0) to dark blue (1); text turns white on dark cells.
    public static func colour(_ v: Double) -> String {
        let t = min(1, max(0, v))
        let (r0, g0, b0) = (247.0, 251.0, 255.0), (r1, g1, b1) = (8.0, 48.0, 107.0)
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * t).rounded()) }
        return String(format: "#%02x%02x%02x", mix(r0, r1), mix(g0, g1), mix(b0, b1))
    }

    public func draw(_ doc: SVGDocument, in r: PlotRect) {
        ChartDrawing.title(doc, title, x: 20, y: 24)
        let cw = r.width / Double(max(1, columnLabels.count)), ch = r.height / Double(max(1, rowLabels.count))
        for (j, label) in columnLabels.enumerated() {
            doc.text(r.x + (Double(j) + 0.5) * cw, r.y - 6, label, size: 9.5, anchor: .start, fill: Palette.axis, rotate: -40)
        }
        for (i, label) in rowLabels.enumerated() {
            let top = r.y + Double(i) * ch
            doc.text(r.x - 6, top + ch / 2 + 4, label, size: 10.5, anchor: .end)
            for j in columnLabels.indices {
                let v = j < values[i].count ? values[i][j] : nil
                let text = j < texts[i].count ? texts[i][j] : ""
                doc.rect(r.x + Double(j) * cw, top, cw, ch, fill: v.map(HeatMapPanel.colour) ?? "#eeeeee", stroke: "#ffffff",
                         tooltip: "\(label), \(columnLabels[j]): \(text)")
                doc.text(r.x + (Double(j) + 0.5) * cw, top + ch / 2 + 4, text, size: min(11, ch * 0.6), anchor: .middle,
                         fill: (v ?? 0) > 0.55 ? "#ffffff" : "#222222")
            }
        }
        // Colour key: five steps from 0 to 1.
        let kx = r.x, ky = r.bottom + 14
        doc.text(kx, ky + 10, colourLabel + ":", size: 10.5)
        for k in 0 ... 4 {
            let v = Double(k) / 4
            let x0 = kx + 230 + Double(k) * 46
            doc.rect(x0, ky, 44, 13, fill: HeatMapPanel.colour(v))
            doc.text(x0 + 22, ky + 25, String(format: "%.0f%%", v * 100), size: 9.5, anchor: .middle, fill: Palette.axis)
        }
    }
}

/// Puts point labels where they overlap neither markers nor other labels, trying the four
/// corners around the point in turn (right-above first); falls back to right-above.
struct LabelPlacer {
    var bounds: PlotRect
    private var taken: [(x0: Double, y0: Double, x1: Double, y1: Double)] = []

    init(bounds: PlotRect) { self.bounds = bounds }

    mutating func avoid(x: Double, y: Double, radius: Double = 5) {
        taken.append((x - radius, y - radius, x + radius, y + radius))
    }

    /// Text position and anchor for `text` beside the point (x, y); the box is then taken.
    mutating func place(_ text: String, x: Double, y: Double) -> (Double, Double, SVGDocument.Anchor) {
        let w = Double(text.count) * 5.6, h = 10.0
        let options: [(dx: Double, dy: Double, anchor: SVGDocument.Anchor)] = [(7, -6, .start), (7, 13, .start), (-7, -6, .end), (-7, 13, .end), (0, -10, .middle), (0, 19, .middle)]
        func box(_ o: (dx: Double, dy: Double, anchor: SVGDocument.Anchor)) -> (x0: Double, y0: Double, x1: Double, y1: Double) {
            let left = o.anchor == .start ? x + o.dx : o.anchor == .end ? x + o.dx - w : x - w / 2
            return (left, y + o.dy - h, left + w, y + o.dy + 1)
        }
        func free(_ b: (x0: Double, y0: Double, x1: Double, y1: Double)) -> Bool {
            b.x0 >= bounds.x && b.x1 <= bounds.right + 40 && b.y0 >= bounds.y - 12 && b.y1 <= bounds.bottom
                && !taken.contains { $0.x0 < b.x1 && b.x0 < $0.x1 && $0.y0 < b.y1 && b.y0 < $0.y1 }
        }
        let choice = options.first { free(box($0)) } ?? options[0]
        taken.append(box(choice))
        return (x + choice.dx, y + choice.dy, choice.anchor)
    }
}
