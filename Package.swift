// swift-tools-version:6.0
// The module map of ranksweep (see ../shared/DESIGN.md):
//   C system libraries -> Engine -> Imaging, Compression -> Pipeline -> Sweep, Reports -> ranksweep (CLI)
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
        .target(name: "CSupport"),
        // Raw-sample PNG reading/writing over libpng's classic API (its setjmp error handling stays in C).
        .target(name: "CPNGSupport", dependencies: ["CPNG"]),

        // The neural-network engine: tensors, layers, U-Net, losses, Adam, safetensors.
        .target(name: "Engine", dependencies: ["CBLAS", "CSupport"]),
        // PNG codec, dataset folders, synthetic data, augmentation.
        .target(name: "Imaging", dependencies: ["Engine", "CPNG", "CPNGSupport"]),
        // SVD / ARSVD factorisation, LowRankConv2D, parameter/FLOP/latency accounting.
        .target(name: "Compression", dependencies: ["Engine", "CBLAS"]),
        // The jobs as plain functions: train(spec), compress(spec), evaluate(spec).
        .target(name: "Pipeline", dependencies: ["Engine", "Imaging", "Compression"]),
        // Sweep spec, job graph, wire protocol, ZeroMQ + CURVE transport, coordinator, worker, SQLite store.
        .target(name: "Sweep", dependencies: [
            "Pipeline", "CZeroMQ", "CSodium", "CSupport",
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // Tables, CSV/JSON/Markdown/HTML, SVG charts, PNG overlays.
        .target(name: "Reports", dependencies: ["Sweep", "Pipeline", "Imaging"]),
        // The command-line tool: thin, calls the modules.
        .executableTarget(name: "ranksweep", dependencies: [
            "Engine", "Imaging", "Compression", "Pipeline", "Sweep", "Reports", "CSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"]),
        .testTarget(name: "SweepTests", dependencies: ["Sweep"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Sweep", "Imaging"]),
        .testTarget(name: "CLITests", dependencies: ["Pipeline"]),
    ],
    swiftLanguageModes: [.v6]
)
