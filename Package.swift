// swift-tools-version:6.0
// The module map of ranksweep. Dependencies point one way, upwards, in two stacks that meet only
// in the executable:
//   training:  C libraries, Basics -> Engine -> Imaging, Compression, ModelInterop -> Pipeline
//   sweeps:    C libraries, Basics -> Sweep (no training code: coordinator, status, keygen stay small)
//   SweepJobs (where the two stacks meet: the job kinds' executors, spec mapping, preflight, local
//     workers, the live report) -> Reports (above it) -> ranksweep (CLI: parses and calls)
//   Dashboard (above Sweep only: the live web view and /metrics; never the training stack) -> ranksweep
//   CommandLineOptions (the option groups the commands share, parse-only) -> ranksweep
// Every target lists every module it imports.
import PackageDescription

let package = Package(
    name: "ranksweep",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ranksweep", targets: ["ranksweep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The dashboard's HTTP server (SwiftNIO underneath: header limits, idle timeouts) and /metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries, each behind its own module map; Swift code never includes system headers.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        // Process-level C helpers Swift 6 cannot express safely: signals, spawn, stdio buffering, rusage.
        .target(name: "CSupport"),
        // The engine's innermost loops in C, vectorised per CPU and fast to compile: Winograd F(2x2)/F(4x4) transforms,
        // the narrow layers' direct-convolution micro-kernels (AVX-512/AVX2), BatchNorm and pooling passes.
        .target(name: "CKernels"),
        // What every module uses, one helper per concern: atomic file writes, user paths, CSV, the
        // log, the monotonic clock, the progress display, shell-quoted hints, did-you-mean suggestions,
        // starting a child process (SpawnedChild), the CPU's name and flags; and the settings that travel from a sweep file
        // into the training loop unchanged (TrainingSettings, FineTuneSettings, DatasetOptions).
        .target(name: "Basics", dependencies: ["CSupport"]),
        // Raw-sample PNG reading/writing over libpng's classic API (its setjmp error handling stays in C).
        .target(name: "CPNGSupport", dependencies: ["CPNG"]),
        // JPEG reading/writing over libjpeg-turbo (its longjmp error handling stays in C).
        .target(name: "CJPEGSupport", dependencies: ["CJPEG"]),
        // TIFF reading/writing over libtiff, with per-file error handlers.
        .target(name: "CTIFFSupport", dependencies: ["CTIFF"]),

        // The neural-network engine: tensors, layers (LowRankConv2D, Tucker2Conv2D, SpatialSVDConv2D included), U-Net, losses, Adam, safetensors;
        // OpenBLAS's kernel choice (BLASEnvironment) and `bench engine`'s comparison with TensorFlow (Bench/).
        .target(name: "Engine", dependencies: ["Basics", "CBLAS", "CSupport", "CKernels"]),
        // PNG/JPEG/TIFF decoding, dataset layouts and folders, compact samples and the per-host dataset
        // cache (libsodium's SHA-256 for content hashes), synthetic data, augmentation.
        .target(name: "Imaging", dependencies: ["Basics", "Engine", "CSodium", "CPNG", "CPNGSupport", "CJPEGSupport", "CTIFFSupport"]),
        // Model files in and out: Keras .keras/.h5/.weights.h5 import (libhdf5), ONNX export, ModelFile.load.
        .target(name: "ModelInterop", dependencies: ["Basics", "Engine", "CHDF5"]),
        // SVD / ARSVD / Tucker-2 / spatial-SVD factorisation into Engine's layers, VBMF ranks, BatchNorm recalibration, parameter/FLOP/latency accounting,
        // `bench compression`.
        .target(name: "Compression", dependencies: ["Basics", "Engine", "CBLAS"]),
        // The jobs as plain functions: train(spec), compress(spec), evaluate(spec); data sources, training checkpoints,
        // how training progress and a compression comparison read for a person.
        .target(name: "Pipeline", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "CSupport"]),
        // Sweep spec and job specs, job graph, wire protocol, ZeroMQ + CURVE transport, coordinator,
        // worker and child-process runner, SQLite store with its typed read API. Job executors are supplied
        // by whoever links it (the executable), so Sweep never links the training stack.
        .target(name: "Sweep", dependencies: [
            "Basics", "CZeroMQ", "CSodium", "CSupport",
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Where Sweep meets Pipeline: a sweep job spec mapped onto Pipeline's spec (one place, for the
        // executors and the report's overlays), the executors of the train/compress/sensitivity/allocate
        // kinds (run in `exec-job` children), the sweep's preflight, local worker processes, the live report,
        // `bench coordinator`'s no-op throughput run.
        .target(name: "SweepJobs", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline", "Sweep"]),
        // Above SweepJobs: results tables, CSV/JSON/Markdown/HTML, SVG charts, PNG overlays.
        .target(name: "Reports", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline", "Sweep", "SweepJobs"]),
        // The live dashboard: an HTTP server (Hummingbird) on its own threads that reads the coordinator's
        // published change events (or a state dir), a JSON API over the job table, Server-Sent Events,
        // the self-contained page, /metrics (swift-prometheus), bearer/cookie tokens off loopback.
        .target(name: "Dashboard", dependencies: [
            "Basics", "Sweep",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The option groups several commands share (data, dataset layout, threads, comma lists,
        // progress, logging, heartbeat timing), parse-only and unit-tested without a process.
        .target(name: "CommandLineOptions", dependencies: [
            "Basics", "Engine", "Pipeline", "Sweep", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The command-line tool: thin, calls the modules.
        .executableTarget(name: "ranksweep", dependencies: [
            "Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline", "Sweep", "SweepJobs", "Reports", "Dashboard", "CSupport",
            "CommandLineOptions",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // What the test targets share: the built binary (beside the test runner, refused when older
        // than the sources) and the machine's load factor for timing windows.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "BasicsTests", dependencies: ["Basics", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "ImagingTests", dependencies: ["Basics", "Engine", "Imaging"]),
        .testTarget(name: "CompressionTests", dependencies: ["Engine", "Compression"]),
        .testTarget(name: "PipelineTests", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline"]),
        .testTarget(name: "SweepTests", dependencies: ["Basics", "Engine", "Imaging", "Compression", "Pipeline", "Sweep", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Basics", "Imaging", "Pipeline", "Sweep", "SweepJobs", "Reports", "TestSupport"]),
        // Runs the built `ranksweep` binary the way a user does, from temporary working directories;
        // Snapshots/ holds each command's help screen (read by path, not a resource).
        .testTarget(name: "CLITests", dependencies: ["Basics", "Engine", "Imaging", "Pipeline", "TestSupport"], exclude: ["Snapshots"]),
        .testTarget(name: "DashboardTests", dependencies: ["Basics", "Sweep", "Dashboard"]),
        .testTarget(name: "CommandLineOptionsTests", dependencies: [
            "Basics", "Sweep", "CommandLineOptions", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ModelInteropTests", dependencies: ["Engine", "Compression", "ModelInterop", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
