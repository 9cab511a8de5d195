// swift-tools-version:6.0
// The SAGAN engine and tool. Targets are layered bottom-up; each imports only those below it:
// CDNNL (system oneDNN) and CKernels (hand-vectorised C) → Kernels (backend seam) → Autodiff (tensor + tape) → NeuralNet → Optimizers → GAN → sagan;
// Datasets (image decoding through CImageCodecs, packing, loading) sits on Autodiff; GAN uses it for training;
// Evaluation (InceptionV3, FID, KID, SWD) sits on NeuralNet and Datasets.
import PackageDescription

/// Kernel loops are bounds-checked in debug builds and unchecked in release.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "sagan",
    products: [
        .executable(name: "sagan", targets: ["SaganCLI"]),
        .library(name: "NeuralNet", targets: ["NeuralNet", "Optimizers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["CDNNL", "CKernels"], swiftSettings: kernelSettings),
        .target(name: "Autodiff", dependencies: ["Kernels"]),
        .target(name: "NeuralNet", dependencies: ["Autodiff"]),
        .target(name: "Optimizers", dependencies: ["Kernels", "NeuralNet"]),
        .target(name: "GAN", dependencies: ["NeuralNet", "Optimizers", "Datasets"]),
        .target(name: "Evaluation", dependencies: ["Kernels", "NeuralNet", "Datasets"], swiftSettings: kernelSettings),
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("z")]),
        .target(name: "Datasets", dependencies: ["Autodiff", "CImageCodecs", "CMachine"]),
        .target(name: "CMachine"),
        .executableTarget(
            name: "SaganCLI",
            dependencies: [
                "Kernels", "Autodiff", "NeuralNet", "Optimizers", "GAN", "Datasets", "Evaluation", "CMachine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NeuralNetTests", dependencies: ["NeuralNet", "Optimizers"]),
        .testTarget(name: "GANTests", dependencies: ["GAN", "Datasets"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"]),
    ]
)
