/// "Did you mean": the closest known name to a misspelt one, for any error that names an unknown
/// key or value. Underscores, dashes and case do not count (`finetune` finds `fine_tune`).
public enum Suggestion {
    /// The candidate nearest `word` by edit distance, when near enough (a third of its length, at least 2).
    public static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        func normal(_ s: String) -> [Character] { Array(s.lowercased().filter { $0 != "_" && $0 != "-" }) }
        let w = normal(word)
        var best: (name: String, distance: Int)?
        for c in candidates {
            let d = distance(w, normal(c))
            if d < (best?.distance ?? .max) { best = (c, d) }
        }
        guard let best, best.distance <= max(2, w.count / 3) else { return nil }
        return best.name
    }

    /// Levenshtein distance.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0 ... b.count)
        for i in 1 ... a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
