import Foundation

/// The Pareto chart's data: every finished job with a Dice and a size, marked when no other job
/// is at least as small and at least as good with one strictly better (the front the page draws).
enum ParetoFront {
    static func points(_ jobs: [JobView]) -> [[String: Any]] {
        let candidates = jobs.filter { $0.state == .done && $0.figures.dice != nil && $0.figures.parameters != nil }
        // Sorted by size, then best Dice first: a point is on the front when it beats every smaller one.
        let sorted = candidates.sorted {
            ($0.figures.parameters!, -$0.figures.dice!, $0.seq) < ($1.figures.parameters!, -$1.figures.dice!, $1.seq)
        }
        var best = -Double.infinity
        var front = Set<String>()
        for j in sorted where j.figures.dice! > best {
            front.insert(j.id)
            best = j.figures.dice!
        }
        return candidates.map { j in
            ["job": j.id, "label": j.label, "kind": j.kind, "parameters": j.figures.parameters!, "dice": j.figures.dice!,
             "flops": orNull(j.figures.flops), "front": front.contains(j.id)] as [String: Any]
        }
    }
}

/// Parallel coordinates over the grid's axes (the spec settings that vary) and the outcome:
/// one line per job, at most `maxLines` (evenly spaced through the plan) to keep the page light.
enum ParallelCoordinates {
    static let maxLines = 2000

    static func data(_ jobs: [JobView], axes: [String]) -> [String: Any] {
        let finished = jobs.filter { $0.state == .done && $0.figures.dice != nil }
        // Nothing varies and nothing has a Dice (a noop or sleep sweep): no chart, no lines to send.
        if axes.isEmpty && finished.isEmpty { return ["axes": [String](), "lines": [Any](), "of": 0] }
        var chosen = finished.isEmpty ? jobs : finished
        if chosen.count > maxLines {
            let step = Double(chosen.count) / Double(maxLines)
            chosen = (0 ..< maxLines).map { chosen[Int(Double($0) * step)] }
        }
        var columns = axes
        if !finished.isEmpty { columns += ["dice", "parameters"] }
        let lines: [[String: Any]] = chosen.map { j in
            var values: [String: Any] = [:]
            for a in axes { if let v = j.settings[a] { values[a] = v.json } }
            if let d = j.figures.dice { values["dice"] = d }
            if let p = j.figures.parameters { values["parameters"] = p }
            return ["job": j.id, "state": j.state.rawValue, "values": values]
        }
        return ["axes": columns, "lines": lines, "of": finished.isEmpty ? jobs.count : finished.count]
    }
}
