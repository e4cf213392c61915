import XCTest
@testable import Engine

/// Conv2D forward against a direct, naive convolution loop on random data.
final class ConvolutionReferenceTests: XCTestCase {
    func naiveConvolution(_ x: Tensor, kernel k: Tensor, bias: Tensor?) -> Tensor {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (k.shape[0], k.shape[1], k.shape[3])
        var y = Tensor.zeros([n, h, w, cout])
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for co in 0..<cout {
            var s = Double(bias?.storage[co] ?? 0)
            for dy in 0..<kh { for dx in 0..<kw {
                let si = i + dy - (kh - 1) / 2, sj = j + dx - (kw - 1) / 2
                guard si >= 0, si < h, sj >= 0, sj < w else { continue }
                for ci in 0..<cin { s += Double(x[b, si, sj, ci]) * Double(k[dy, dx, ci, co]) }
            } }
            y[b, i, j, co] = Float(s)
        } } } }
        return y
    }

    func testMatchesNaiveLoopOnSeveralShapes() {
        // (kh, kw) may differ; channel counts on and off the 8-wide vector path; the third shape has
        // 3072 output pixels, so it is split across threads.
        let shapes: [(n: Int, h: Int, w: Int, cin: Int, cout: Int, kh: Int, kw: Int)] = [
            (2, 7, 5, 3, 4, 3, 3), (1, 1, 1, 2, 3, 3, 3), (3, 32, 32, 3, 4, 3, 3),
            (3, 6, 6, 8, 5, 1, 1), (2, 9, 11, 2, 3, 5, 5), (1, 4, 13, 5, 7, 7, 7), (1, 3, 2, 1, 1, 1, 1),
            (2, 8, 9, 16, 24, 3, 5), (2, 10, 6, 9, 16, 5, 1), (4, 16, 16, 16, 16, 3, 3),
            // Spatial SVD's halves: kx1 and 1xk with 'same' padding along one axis only.
            (2, 7, 6, 8, 16, 3, 1), (2, 7, 6, 16, 8, 1, 3),
        ]
        for (index, s) in shapes.enumerated() {
            let x = randomTensor([s.n, s.h, s.w, s.cin], seed: UInt64(100 + index))
            let k = randomTensor([s.kh, s.kw, s.cin, s.cout], seed: UInt64(200 + index))
            let b = index % 2 == 0 ? randomTensor([s.cout], seed: UInt64(300 + index)) : nil
            for workspace in [Workspace(), Workspace(capacityFloats: 64, minimumRows: 1)] {
                let conv = Conv2D(name: "c\(index)", kernel: k, bias: b, workspace: workspace)
                let err = conv.forward(x, training: false).maxAbsDifference(naiveConvolution(x, kernel: k, bias: b))
                XCTAssertLessThan(err, 1e-4, "shape \(s) workspace \(workspace.capacityFloats)")
            }
        }
        XCTAssertEqual(shapes.count, 12)
    }
}
