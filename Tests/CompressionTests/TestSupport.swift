import Foundation
import XCTest
@testable import Compression
@testable import Engine

func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, offset: Float = 0) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var t = Tensor.zeros(shape)
    for i in 0..<t.count { t.storage[i] = offset + rng.uniform(-scale, scale) }
    return t
}

/// A small U-Net with random biases and BatchNorm state, so inference exercises every term.
func randomisedUNet(_ config: UNetConfig, seed: UInt64) -> UNet {
    let model = UNet(config: config, seed: seed)
    var salt: UInt64 = 1000
    for conv in model.convolutions {
        if let c = conv as? Conv2D, let b = c.bias { b.value = randomTensor(b.value.shape, seed: seed &+ salt, scale: 0.1) }
        salt += 1
    }
    for bn in model.batchNorms {
        let c = bn.channels
        bn.gamma.value = randomTensor([c], seed: seed &+ salt, scale: 0.3, offset: 1)
        bn.beta.value = randomTensor([c], seed: seed &+ salt + 1, scale: 0.2)
        bn.movingMean.value = randomTensor([c], seed: seed &+ salt + 2, scale: 0.2)
        bn.movingVariance.value = randomTensor([c], seed: seed &+ salt + 3, scale: 0.5, offset: 1.5)
        salt += 4
    }
    return model
}

/// `m x k` with orthonormal columns: U of the SVD of a random matrix.
func randomOrthonormalColumns(rows m: Int, columns k: Int, seed: UInt64) throws -> [Float] {
    let svd = try SVD.decompose(randomTensor([m, k], seed: seed).storage, rows: m, columns: k)
    return svd.u
}

/// Row-major product (m x k) * (k x n), Double accumulation.
func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for t in 0..<k {
            let x = Double(a[i * k + t])
            for j in 0..<n { c[i * n + j] += x * Double(b[t * n + j]) }
        }
    }
    return c
}

func frobenius(_ a: [Double], minus b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + ($1.0 - Double($1.1)) * ($1.0 - Double($1.1)) }.squareRoot()
}
