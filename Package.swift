// swift-tools-version:6.1
// The SAGAN engine and tool. Targets are layered bottom-up; each imports only those below it and declares
// every module it imports:
// CDNNL (system oneDNN), CKernels (hand-vectorised C) → Kernels (the backend seam); FileFormats (safetensors,
// exact JSON, atomic writes, file checks); CMachine (machine facts) → Autodiff (tensor, tape, engine
// configuration) → NeuralNet → Optimizers; Datasets (decoding through CImageCodecs, packing, loading) on
// Autodiff; Collectives (MPI through COpenMPI) on Autodiff; Evaluation (InceptionV3, FID, KID, SWD) on NeuralNet
// and Datasets; GAN (models, training runs, evaluation of generators) on all of those but Collectives; Studio
// (the web page of `sagan studio`, on Hummingbird) on GAN; then `sagan` (SaganCLI). Nothing above Autodiff
// imports Kernels; Examples/ uses the libraries as a Swift program would.
import PackageDescription

/// Kernel loops are bounds-checked in debug builds and unchecked in release.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "sagan",
    products: [
        .executable(name: "sagan", targets: ["SaganCLI"]),
        .library(name: "NeuralNet", targets: ["NeuralNet", "Optimizers"]),
        // Everything `sagan` is built from, for Swift programs and the fuzz targets (Fuzz/).
        .library(
            name: "SaganLibrary",
            targets: ["FileFormats", "Autodiff", "NeuralNet", "Optimizers", "Datasets", "Evaluation", "GAN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Without its default traits: no swift-configuration to build, and nothing here needs them.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        // Hummingbird's logger, quietened to warnings for the studio.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Hummingbird's own dependencies, named because the studio uses their types (header fields, time amounts).
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["CDNNL", "CKernels"], swiftSettings: kernelSettings),
        .target(name: "FileFormats"),
        .target(name: "Autodiff", dependencies: ["FileFormats", "Kernels", "CMachine"]),
        .target(name: "NeuralNet", dependencies: ["FileFormats", "Autodiff"]),
        .target(name: "Optimizers", dependencies: ["NeuralNet"]),
        .target(
            name: "GAN",
            dependencies: ["FileFormats", "Autodiff", "NeuralNet", "Optimizers", "Datasets", "Evaluation"]),
        // The page's HTML, CSS and JavaScript are compiled into the binary: `sagan studio` needs no files.
        .target(
            name: "Studio",
            dependencies: [
                "FileFormats", "Autodiff", "NeuralNet", "Datasets", "Evaluation", "GAN",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [
                .embedInCode("Page/index.html"), .embedInCode("Page/studio.css"), .embedInCode("Page/common.js"),
                .embedInCode("Page/charts.js"), .embedInCode("Page/runs.js"), .embedInCode("Page/run.js"),
                .embedInCode("Page/playground.js"), .embedInCode("Page/attention.js"), .embedInCode("Page/studio.js"),
            ]),
        .target(
            name: "Evaluation", dependencies: ["FileFormats", "Autodiff", "NeuralNet", "Datasets"],
            swiftSettings: kernelSettings),
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("z")]),
        .target(name: "Datasets", dependencies: ["FileFormats", "Autodiff", "CImageCodecs", "CMachine"]),
        .target(name: "CMachine"),
        .systemLibrary(
            name: "COpenMPI", path: "Sources/COpenMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CCollectives", dependencies: ["COpenMPI"]),
        .target(name: "Collectives", dependencies: ["Autodiff", "CCollectives"]),
        .executableTarget(
            name: "SaganCLI",
            dependencies: [
                "FileFormats", "Autodiff", "NeuralNet", "Optimizers", "GAN", "Datasets", "Evaluation", "Collectives",
                "Studio", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The libraries used as a Swift program uses them; the README's snippets come from here.
        .executableTarget(
            name: "sagan-examples",
            dependencies: ["Autodiff", "NeuralNet", "Optimizers", "Datasets", "Evaluation", "GAN"],
            path: "Examples"),
        // Test helpers shared by the test targets (the `slow` tag); not part of any product.
        .target(
            name: "TestSupport", dependencies: ["Kernels", "Autodiff", "Datasets", "GAN"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["TestSupport", "Kernels", "CKernels"]),
        .testTarget(name: "FileFormatsTests", dependencies: ["FileFormats"]),
        .testTarget(
            name: "AutodiffTests", dependencies: ["TestSupport", "Kernels", "Autodiff"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "NeuralNetTests",
            dependencies: ["TestSupport", "FileFormats", "Kernels", "Autodiff", "NeuralNet", "Optimizers"]),
        .testTarget(
            name: "GANTests",
            dependencies: [
                "TestSupport", "FileFormats", "Kernels", "Autodiff", "NeuralNet", "Optimizers", "Datasets",
                "Evaluation",
                "GAN",
            ],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["FileFormats", "Autodiff", "Datasets"]),
        .testTarget(
            name: "EvaluationTests",
            dependencies: ["TestSupport", "FileFormats", "Autodiff", "Datasets", "Evaluation"]),
        // `sagan` itself, in child processes (and under mpirun).
        .testTarget(
            name: "SaganCLITests",
            dependencies: ["TestSupport", "FileFormats", "Autodiff", "Datasets", "Evaluation", "GAN"]),
        .testTarget(name: "StudioTests", dependencies: ["TestSupport", "FileFormats", "Datasets", "GAN", "Studio"]),
    ]
)
