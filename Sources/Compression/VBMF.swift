import Foundation

/// Rank selection by empirical variational Bayesian matrix factorisation (EVBMF).
///
/// The global analytic solution of Nakajima, Sugiyama, Babacan and Tomioka (JMLR 14, 2013), as
/// jacobgil/pytorch-tensor-decompositions uses it to pick Tucker ranks: for an `L x M` matrix
/// (`L <= M`, `α = L/M`) with singular values `s_h`, the noise variance `σ²` minimises the free
/// energy, and a component survives when `s_h > sqrt(M σ² (1 + τ̄)(1 + α/τ̄))`, `τ̄ = 2.5129 sqrt(α)`.
/// It needs only the singular values and the shape, so a rank is a pure function of the kernel.
public enum VBMF {
    /// The number of components EVBMF keeps (0 when it finds only noise) for a `rows x columns`
    /// matrix with `singularValues` (descending; all `min(rows, columns)` of them).
    public static func rank(singularValues: [Float], rows: Int, columns: Int) -> Int {
        let l = min(rows, columns), m = max(rows, columns)
        let s = singularValues.map(Double.init)
        precondition(s.count == l, "VBMF: \(s.count) singular values for a \(rows) x \(columns) matrix")
        guard l >= 2, let largest = s.first, largest > 0 else { return l == 1 && (s.first ?? 0) > 0 ? 1 : 0 }
        let sigma2 = noiseVariance(s, l: l, m: m)
        let alpha = Double(l) / Double(m), tauBar = 2.5129 * alpha.squareRoot()
        let threshold = (Double(m) * sigma2 * (1 + tauBar) * (1 + alpha / tauBar)).squareRoot()
        return s.filter { $0 > threshold }.count
    }

    /// The `σ²` minimising the EVBMF free energy between the reference implementation's bounds.
    /// A log-spaced scan then a golden-section refinement around the best point: deterministic, and
    /// not trapped by the free energy's kinks the way a single bracketed search can be.
    static func noiseVariance(_ s: [Double], l: Int, m: Int) -> Double {
        let h = s.count
        let alpha = Double(l) / Double(m), tauBar = 2.5129 * alpha.squareRoot()
        let xBar = (1 + tauBar) * (1 + alpha / tauBar)
        let squares = s.map { $0 * $0 }
        let upper = squares.reduce(0, +) / Double(l * m)
        let boundIndex = min(Int((Double(l) / (1 + alpha)).rounded(.up)) - 1, h) - 1
        let tail = Array(squares[min(h - 1, max(0, boundIndex + 1))...])
        var lower = max(tail[0] / (Double(m) * xBar), tail.reduce(0, +) / Double(tail.count) / Double(m))
        lower = min(lower, upper)
        guard lower > 0, upper > lower else { return max(upper, .leastNormalMagnitude) }
        func energy(_ sigma2: Double) -> Double { freeEnergy(sigma2, squares: squares, l: l, m: m, xBar: xBar) }
        let (a, b) = (log(lower), log(upper))
        let steps = 200
        var best = 0, bestValue = Double.infinity
        for i in 0...steps {
            let v = energy(exp(a + (b - a) * Double(i) / Double(steps)))
            if v < bestValue { bestValue = v; best = i }
        }
        var lo = a + (b - a) * Double(max(0, best - 1)) / Double(steps)
        var hi = a + (b - a) * Double(min(steps, best + 1)) / Double(steps)
        let ratio = (5.0.squareRoot() - 1) / 2
        for _ in 0..<60 {
            let c = hi - ratio * (hi - lo), d = lo + ratio * (hi - lo)
            if energy(exp(c)) <= energy(exp(d)) { hi = d } else { lo = c }
        }
        return exp((lo + hi) / 2)
    }

    /// The free energy of EVBMF at noise variance `sigma2` (up to constants), all `L` components kept.
    static func freeEnergy(_ sigma2: Double, squares: [Double], l: Int, m: Int, xBar: Double) -> Double {
        let alpha = Double(l) / Double(m)
        var total = 0.0
        for sq in squares {
            let x = sq / (Double(m) * sigma2)
            if x > xBar {
                let d = x - (1 + alpha)
                let tau = 0.5 * (d + (d * d - 4 * alpha).squareRoot())
                total += x - tau + log((tau + 1) / x) + alpha * log(tau / alpha + 1)
            } else {
                total += x - log(x + Double.ulpOfOne)
            }
        }
        return total + Double(l - squares.count) * log(sigma2)
    }
}
