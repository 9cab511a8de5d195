// swift-tools-version:6.0
// libFuzzer targets for every parser of outside data (issue 14). Built and run by `make fuzz`:
// swift build --sanitize fuzzer --sanitize address, then each target on its seed corpus in
// Tests/Fuzz/<target>. Kept out of the main package: a fuzz target has no main of its own
// (libFuzzer provides it), so it only links with the fuzzer runtime.
import PackageDescription

let package = Package(
    name: "sagan-fuzz",
    dependencies: [.package(name: "sagan", path: "..")],
    targets: ["FuzzSafeTensors", "FuzzImages", "FuzzIDX", "FuzzConfig", "FuzzRunInfo"].map { name in
        .executableTarget(name: name, dependencies: [.product(name: "SaganLibrary", package: "sagan")])
    }
)
