import ArgumentParser
import Basics
import Foundation
import ModelInterop
import Reports

/// `ranksweep export`: a model (a file, or a sweep job's) as ONNX, or a sweep job's model as safetensors.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a model as ONNX (opset 17), or get a sweep job's model out of its state dir.",
        discussion: """
        A model file: `ranksweep export MODEL --onnx F`. A sweep's job: `ranksweep export --state-dir D --job ID` \
        with --out F (the safetensors model) and/or --onnx F; `ranksweep status --state-dir D` and the report's \
        results.csv name the jobs. ONNX input 'image' is NHWC (batch, height, width, channels) followed by a \
        Transpose to NCHW; output 'probabilities' is NHWC (batch, height, width, 1). A factorised layer becomes \
        two Conv nodes; BatchNormalization nodes are kept; tensors keep their ranksweep names.
        """)

    @Argument(help: "Model file: ranksweep safetensors, or a Keras .keras/.h5/.weights.h5 (or give --state-dir and --job).") var model: String?
    @Option(name: .customLong("state-dir"), help: "A sweep's state directory (with --job).") var stateDir: String?
    @Option(help: "The sweep job whose model to export (with --state-dir).") var job: String?
    @Option(help: "Output ONNX file.") var onnx: String?
    @Option(help: "Output safetensors file: the job's model as ranksweep wrote it (with --state-dir and --job).") var out: String?
    /// For `make interop`: a seeded random batch `x` and ranksweep's output `y` on it, as safetensors.
    @Option(name: [.customLong("sample-out"), .customLong("sample_out")], help: .hidden) var sampleOut: String?
    @Option(name: [.customLong("sample-size"), .customLong("sample_size")], help: .hidden) var sampleSize = 32

    func validate() throws {
        guard sampleSize >= 1 else { throw ValidationError("--sample-size must be positive") }
        switch (model, stateDir, job) {
        case (.some, nil, nil): if out != nil { throw ValidationError("--out takes a sweep job's model (--state-dir D --job ID); for a model file give --onnx") }
        case (nil, .some, .some): break
        case (.some, _, _): throw ValidationError("give a model file or --state-dir with --job, not both")
        case (nil, .some, nil): throw ValidationError("--state-dir needs --job ID (which job's model)")
        case (nil, nil, .some): throw ValidationError("--job needs --state-dir D (the sweep's state directory)")
        case (nil, nil, nil): throw ValidationError("give a model file, or --state-dir D --job ID")
        }
        if onnx == nil && out == nil { throw ValidationError(model != nil ? "give --onnx FILE" : "give --out FILE and/or --onnx FILE") }
    }

    func run() throws {
        try SweepCLI.guarded {
            var path = model.map { UserPath.absolute($0) } ?? ""
            if let stateDir, let job {
                let dir = UserPath.absolute(stateDir)
                let artifact: String
                do { artifact = try ReportModels.model(ofJob: job, stateDir: dir) } catch let problem as ReportModels.JobModelProblem {
                    throw ValidationError(problem.description)
                }
                path = artifact
                if let out {
                    let target = UserPath.absolute(out)
                    try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: artifact)), to: target)
                    print("\(target): \(job)'s model")
                }
            }
            guard let onnx else { return }
            let onnxPath = UserPath.absolute(onnx), sampleOut = sampleOut.map { UserPath.absolute($0) }
            let (net, metadata) = try ModelFile.load(path: path)
            let written = try ONNXExport.write(net, metadata: metadata, to: onnxPath)
            print("\(onnxPath): opset \(ONNXExport.opset), \(written.nodes) nodes, \(written.initializers) initializers holding \(written.initializerElements) parameters (the model has \(net.parameterCount)), \(written.bytes) bytes")
            if let sampleOut {
                guard sampleSize % (1 << net.config.depth) == 0 else { throw ValidationError("--sample-size must be a multiple of \(1 << net.config.depth)") }
                let x = try ONNXExport.writeSample(net, size: sampleSize, to: sampleOut)
                print("\(sampleOut): input x \(x.shape) and ranksweep's output y")
            }
        }
    }
}
