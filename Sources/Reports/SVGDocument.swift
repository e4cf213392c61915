import Foundation

/// A minimal SVG writer: shapes and text appended in order, rendered as one `<svg>` element with
/// the SVG namespace, so it is valid both inline in XHTML and as a standalone file. Coordinates are
/// user units (pixels at 100% zoom); every text is XML-escaped.
public final class SVGDocument {
    public let width: Double
    public let height: Double
    /// Read by screen readers and shown as a tooltip (`<title>`).
    public let title: String
    private var elements: [String] = []

    public init(width: Double, height: Double, title: String) {
        self.width = width; self.height = height; self.title = title
    }

    public func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String,
                     width: Double = 1, dash: String? = nil, opacity: Double? = nil) {
        elements.append("<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(f(width))\""
            + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + (opacity.map { " stroke-opacity=\"\(f($0))\"" } ?? "") + "/>")
    }

    public func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil,
                     tooltip: String? = nil) {
        let attrs = "x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(max(0, w)))\" height=\"\(f(max(0, h)))\" fill=\"\(fill)\""
            + (stroke.map { " stroke=\"\($0)\" stroke-width=\"0.5\"" } ?? "")
        elements.append(tooltip.map { "<rect \(attrs)><title>\(xmlEscape($0))</title></rect>" } ?? "<rect \(attrs)/>")
    }

    /// A data marker: `circle`, `square`, `triangle` or `diamond`, centred on (x, y).
    public func marker(_ shape: MarkerShape, _ x: Double, _ y: Double, size: Double = 4.5, fill: String,
                       stroke: String = "#ffffff", tooltip: String? = nil) {
        let body: String
        switch shape {
        case .circle:
            body = "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(f(size))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1\""
        case .square:
            body = "<rect x=\"\(f(x - size))\" y=\"\(f(y - size))\" width=\"\(f(2 * size))\" height=\"\(f(2 * size))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1\""
        case .triangle:
            let pts = [(x, y - size * 1.2), (x - size * 1.1, y + size * 0.9), (x + size * 1.1, y + size * 0.9)]
            body = "<polygon points=\"\(pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1\""
        case .diamond:
            let pts = [(x, y - size * 1.3), (x - size * 1.1, y), (x, y + size * 1.3), (x + size * 1.1, y)]
            body = "<polygon points=\"\(pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1\""
        }
        elements.append(tooltip.map { body + "><title>\(xmlEscape($0))</title></\(shape.element)>" } ?? body + "/>")
    }

    public func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 1.5, dash: String? = nil) {
        guard points.count > 1 else { return }
        elements.append("<polyline points=\"\(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(f(width))\" stroke-linejoin=\"round\""
            + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>")
    }

    public enum Anchor: String { case start, middle, end }

    public func text(_ x: Double, _ y: Double, _ string: String, size: Double = 11, anchor: Anchor = .start,
                     fill: String = "#222222", bold: Bool = false, rotate: Double? = nil) {
        var attrs = "x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(f(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(fill)\""
        if bold { attrs += " font-weight=\"bold\"" }
        if let rotate { attrs += " transform=\"rotate(\(f(rotate)) \(f(x)) \(f(y)))\"" }
        elements.append("<text \(attrs)>\(xmlEscape(string))</text>")
    }

    public func render() -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" role="img" font-family="Helvetica, Arial, sans-serif">
        <title>\(xmlEscape(title))</title>
        <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="#ffffff"/>
        \(elements.joined(separator: "\n"))
        </svg>
        """
    }

    /// Coordinates with at most two decimals (compact, and no locale).
    func f(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let r = (x * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }
}

public enum MarkerShape: Sendable {
    case circle, square, triangle, diamond
    var element: String {
        switch self {
        case .circle: "circle"
        case .square: "rect"
        case .triangle, .diamond: "polygon"
        }
    }
}

/// `&`, `<`, `>`, `"` and `'` escaped; control characters other than tab/newline dropped (not allowed in XML).
public func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case "\t", "\n": out.unicodeScalars.append(ch)
        default:
            if ch.value < 0x20 || (0xFFFE ... 0xFFFF).contains(ch.value) { continue }
            out.unicodeScalars.append(ch)
        }
    }
    return out
}
