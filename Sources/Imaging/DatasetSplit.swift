import Engine

/// How a flat dataset is divided into train, validation and test parts.
public struct SplitFractions: Equatable, Sendable, CustomStringConvertible {
    public let train: Double
    public let val: Double
    public let test: Double

    /// Fractions must be non-negative, train positive, and sum to 1.
    public init(train: Double, val: Double, test: Double) {
        precondition(train > 0 && val >= 0 && test >= 0, "SplitFractions: train must be > 0 and val, test >= 0 (got \(train)/\(val)/\(test))")
        precondition(abs(train + val + test - 1) < 1e-6, "SplitFractions: fractions must sum to 1 (got \(train + val + test))")
        self.train = train
        self.val = val
        self.test = test
    }

    /// 80% train, 10% validation, 10% test.
    public static let standard = SplitFractions(train: 0.8, val: 0.1, test: 0.1)

    /// "80/10/10".
    public var description: String {
        [train, val, test].map { String(Int(($0 * 100).rounded())) }.joined(separator: "/")
    }
}

/// The seeded split of a flat dataset: deterministic in (sorted names, fractions, seed) only, so
/// every worker of a sweep that loads the same folder with the same seed gets the same parts.
public enum DatasetSplit {
    /// Splits `names` (any order; they are sorted first) into train/val/test name lists, each sorted.
    ///
    /// Counts: val and test get `round(n * fraction)`, at least 1 each when their fraction is > 0
    /// and n >= 3; train gets the rest and is never empty. The assignment is a Fisher-Yates shuffle
    /// drawn from `SeededGenerator(seed:)` (not the standard library's shuffle, whose algorithm may
    /// change between Swift versions).
    public static func split(_ names: [String], fractions: SplitFractions = .standard, seed: UInt64)
        -> (train: [String], val: [String], test: [String]) {
        var order = names.sorted()
        let n = order.count
        var rng = SeededGenerator(seed: seed)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        var nVal = Int((Double(n) * fractions.val).rounded())
        var nTest = Int((Double(n) * fractions.test).rounded())
        if n >= 3 {
            if fractions.val > 0 { nVal = max(1, nVal) }
            if fractions.test > 0 { nTest = max(1, nTest) }
        }
        // Train is never empty: give back from the larger of val and test.
        while n > 0 && n - nVal - nTest < 1 {
            if nVal >= nTest && nVal > 0 { nVal -= 1 } else if nTest > 0 { nTest -= 1 } else { break }
        }
        let val = Array(order[0..<nVal]).sorted()
        let test = Array(order[nVal..<(nVal + nTest)]).sorted()
        let train = Array(order[(nVal + nTest)...]).sorted()
        return (train, val, test)
    }
}
