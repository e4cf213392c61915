/// The Pareto front of (parameter reduction, Dice) points: those no other point beats on both
/// (at least as large a reduction and at least as high a Dice, better on one).
public enum Pareto {
    /// Indices of `points` on the front, by increasing x.
    public static func front(_ points: [(x: Double, y: Double)]) -> [Int] {
        let order = points.indices.filter { points[$0].x.isFinite && points[$0].y.isFinite }
            .sorted { points[$0].x != points[$1].x ? points[$0].x > points[$1].x : points[$0].y > points[$1].y }
        var best = -Double.infinity
        var out: [Int] = []
        for i in order where points[i].y > best {
            out.append(i)
            best = points[i].y
        }
        return out.reversed()
    }
}
