import CKernels
import Foundation

/// Direct 3x3 convolutions for narrow layers (few channels), in C micro-kernels (CKernels,
/// direct_conv.c) in the style of oneDNN's brgemm: a block of output pixels x 16 output channels
/// stays in registers while the kernel's taps stream past (one broadcast input value times one
/// kernel row of 16 channels per FMA), and for the filter gradient a block of kernel taps x 16
/// output channels stays in registers while an image row's pixels stream past.
///
/// Where it is used: 3x3 layers that do not use Winograd, with at most 32 channels in and out, and
/// whose output channels (forward; input channels for the input gradient) are a multiple of 16.
/// Their GEMMs in `RowConvolution` have only 16-48 columns, where OpenBLAS runs at about half its
/// big-shape speed. Measured on an Intel Xeon (AVX-512, 2 threads, `bench engine --layers`, A/B with
/// RANKSWEEP_DIRECT=off): unet-small's five narrow layers went from 130 to 79 CPU-ms per training
/// step (forward 61-76 -> 106-114 GFLOP per CPU-second, backward 59-77 -> 101-124; the 3-channel
/// first layer 19-26 -> 65-74).
///
/// Determinism: each output sums its terms in one fixed order (tap row, tap column, input channel)
/// whatever the thread count; the filter gradient is one partial per part (contiguous image rows,
/// summed row by row) added in part order. The instruction set is chosen once per process (see
/// `EngineChoices`, `ConvolutionPlan`); AVX-512 and AVX2 fuse multiply-adds, plain C does not, so results differ
/// between them by float32 rounding only.
public enum DirectConvolution {
    /// The kernels' instruction sets, best last.
    public enum ISA: Int32, CaseIterable, Sendable {
        case plain = 0, avx2 = 1, avx512 = 2

        public var name: String {
            switch self {
            case .plain: "plain C"
            case .avx2: "AVX2"
            case .avx512: "AVX-512"
            }
        }

        public var isSupported: Bool { ckernels_direct_isa_supported(rawValue) != 0 }
    }

    /// The instruction set `EngineChoices.current` gives (nil: direct convolutions off): the best
    /// the CPU runs, unless RANKSWEEP_DIRECT is `off`, `plain`, `avx2` or `avx512` (for
    /// measurements; an ISA the CPU lacks falls back to the best it has). Read once per process.
    static let environmentISA: ISA? = {
        let best = ISA.allCases.last { $0.isSupported } ?? .plain
        switch ProcessInfo.processInfo.environment["RANKSWEEP_DIRECT"] {
        case "off": return nil
        case "plain": return .plain
        case "avx2" where ISA.avx2.isSupported: return .avx2
        default: return best
        }
    }()

    /// The best instruction set this CPU runs the kernels with (plain C runs everywhere).
    static var bestSupportedISA: ISA { ISA.allCases.last { $0.isSupported } ?? .plain }

    /// Layers with more input or output channels than this keep going to `RowConvolution` (or
    /// Winograd), whose GEMMs are wide enough there: with 64 (3->64, 16->64, 64->16) the forward
    /// kernel ran at only 57-66 GFLOP/s on one AVX-512 thread, against 105-140 with 16 or 32.
    static let maximumChannels = 32

    /// Whether the kernels produce `channels` output channels (blocks of 16).
    static func accepts(targetChannels channels: Int) -> Bool { channels > 0 && channels % 16 == 0 }

    /// Parts (one per thread, contiguous image rows, each at least 128 output pixels).
    static func parts(imageRows: Int, width: Int) -> Int {
        min(imageRows, Parallel.parts(rows: imageRows * width, minimumPerPart: 128))
    }

    /// `target (n, h, w, ct) = conv3x3(source (n, h, w, cs), kernel (3, 3, cs, ct)) (+ bias)`,
    /// optionally followed by a ReLU. Every element of the target is written.
    static func convolve(_ source: UnsafePointer<Float>, n: Int, h: Int, w: Int, sourceChannels cs: Int,
                         kernel: UnsafePointer<Float>, targetChannels ct: Int, bias: UnsafePointer<Float>?, relu: Bool,
                         into target: UnsafeMutablePointer<Float>, isa: ISA, workspace: Workspace) {
        precondition(accepts(targetChannels: ct), "DirectConvolution: \(ct) output channels is not a multiple of 16")
        let imageRows = n * h
        let parts = parts(imageRows: imageRows, width: w)
        let scratch = (0..<parts).map {
            SendablePointer(workspace.buffer(.columns, part: $0, count: ckernels_direct_scratch_floats(w, cs)))
        }
        let (src, weights, dst) = (SendablePointer(source), SendablePointer(kernel), SendablePointer(target))
        let biasPointer = bias.map { SendablePointer($0) }
        Parallel.forEach(parts) { part in
            let rows = Parallel.slice(imageRows, parts: parts, part)
            ckernels_direct_conv3x3(isa.rawValue, src.pointer, h, w, cs, weights.pointer, ct, biasPointer?.pointer,
                                    relu ? 1 : 0, dst.pointer, rows.lowerBound, rows.upperBound, scratch[part].pointer)
        }
    }

    /// dW and the bias gradient of the output gradient `gradient (n, h, w, cout)` over the input
    /// `source (n, h, w, cin)`: one partial per part, `9 * cin * cout` floats in HWIO order then
    /// `cout` of bias gradient, returned in part order (the caller adds them in that order).
    static func filterGradient(_ source: UnsafePointer<Float>, gradient: UnsafePointer<Float>, n: Int, h: Int, w: Int,
                               cin: Int, cout: Int, isa: ISA, workspace: Workspace) -> [SendablePointer<Float>] {
        precondition(accepts(targetChannels: cout), "DirectConvolution: \(cout) output channels is not a multiple of 16")
        let imageRows = n * h
        let parts = parts(imageRows: imageRows, width: w)
        let partials = workspace.zeroedPartials(parts: parts, count: 9 * cin * cout + cout)
        let scratch = (0..<parts).map {
            SendablePointer(workspace.buffer(.columns, part: $0, count: ckernels_direct_scratch_floats(w, cin)))
        }
        let (src, grad) = (SendablePointer(source), SendablePointer(gradient))
        Parallel.forEach(parts) { part in
            let rows = Parallel.slice(imageRows, parts: parts, part)
            ckernels_direct_conv3x3_filter_gradient(isa.rawValue, src.pointer, grad.pointer, h, w, cin, cout,
                                                    rows.lowerBound, rows.upperBound, partials[part].pointer,
                                                    scratch[part].pointer)
        }
        return partials
    }

    /// The HWIO kernel `(3, 3, cin, cout)` with output channel `co` multiplied by `scale[co]`.
    static func scaledKernel(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int, scale: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: 9 * cin * cout) { out, count in
            for i in 0..<(9 * cin) { for co in 0..<cout { out[i * cout + co] = kernel[i * cout + co] * scale[co] } }
            count = 9 * cin * cout
        }
    }

    /// The kernel for the input gradient, `K'[ky, kx, co, ci] = K[2 - ky, 2 - kx, ci, co]`: dX is
    /// the forward convolution of dY with it.
    static func inputGradientKernel(_ kernel: UnsafePointer<Float>, cin: Int, cout: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: 9 * cin * cout) { out, count in
            Winograd.rotateSwap(kernel, cin: cin, cout: cout, into: out.baseAddress!)
            count = 9 * cin * cout
        }
    }
}
