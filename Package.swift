// swift-tools-version:6.0
// The module map of ranksweep. Dependencies point one way, upwards:
//   C system libraries, Basics -> Engine -> Imaging, Compression -> Pipeline -> Sweep -> Reports -> ranksweep (CLI)
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
        // What every module uses, one helper per concern: atomic file writes, user paths, CSV, the
        // log, the clock, the progress display.
        .target(name: "Basics"),
        // Raw-sample PNG reading/writing over libpng's classic API (its setjmp error handling stays in C).
        .target(name: "CPNGSupport", dependencies: ["CPNG"]),
        // JPEG reading/writing over libjpeg-turbo (its longjmp error handling stays in C).
        .target(name: "CJPEGSupport", dependencies: ["CJPEG"]),
        // TIFF reading/writing over libtiff, with per-file error handlers.
        .target(name: "CTIFFSupport", dependencies: ["CTIFF"]),

        // The neural-network engine: tensors, layers, U-Net, losses, Adam, safetensors.
        .target(name: "Engine", dependencies: ["Basics", "CBLAS", "CSupport"]),
        // PNG/JPEG/TIFF decoding, dataset layouts and folders, synthetic data, augmentation.
        .target(name: "Imaging", dependencies: ["Basics", "Engine", "CPNG", "CPNGSupport", "CJPEGSupport", "CTIFFSupport"]),
        // Model files in and out: Keras .keras/.h5/.weights.h5 import (libhdf5), ONNX export, ModelFile.load.
        .target(name: "ModelInterop", dependencies: ["Basics", "Engine", "CHDF5"]),
        // SVD / ARSVD factorisation, LowRankConv2D, parameter/FLOP/latency accounting.
        .target(name: "Compression", dependencies: ["Basics", "Engine", "CBLAS"]),
        // The jobs as plain functions: train(spec), compress(spec), evaluate(spec).
        .target(name: "Pipeline", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "CSupport"]),
        // Sweep spec, job graph, wire protocol, ZeroMQ + CURVE transport, coordinator, worker, SQLite store.
        .target(name: "Sweep", dependencies: [
            "Basics", "Engine", "Compression", "Imaging", "Pipeline", "CZeroMQ", "CSodium", "CSupport",
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Tables, CSV/JSON/Markdown/HTML, SVG charts, PNG overlays.
        .target(name: "Reports", dependencies: ["Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline", "Sweep"]),
        // The command-line tool: thin, calls the modules.
        .executableTarget(name: "ranksweep", dependencies: [
            "Basics", "Engine", "Imaging", "Compression", "ModelInterop", "Pipeline", "Sweep", "Reports", "CSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "ImagingTests", dependencies: ["Engine", "Imaging"]),
        .testTarget(name: "CompressionTests", dependencies: ["Engine", "Compression"]),
        .testTarget(name: "PipelineTests", dependencies: ["Engine", "Imaging", "Compression", "Pipeline"]),
        .testTarget(name: "SweepTests", dependencies: ["Basics", "Imaging", "Pipeline", "Sweep"]),
        .testTarget(name: "ReportsTests", dependencies: ["Basics", "Imaging", "Sweep", "Reports"]),
        // Runs the built `ranksweep` binary the way a user does, from temporary working directories.
        .testTarget(name: "CLITests", dependencies: ["Basics", "Engine", "Imaging", "Pipeline"]),
        .testTarget(name: "ModelInteropTests", dependencies: ["Engine", "Compression", "ModelInterop"]),
    ],
    swiftLanguageModes: [.v6]
)
