import Datasets
import Foundation
import GAN

// The library used as a Swift program uses it: `swift run -c release sagan-examples [folder]` trains
// 10 steps on Fashion-MNIST (Debian's dataset-fashion-mnist), draws a grid, measures KID (needs the
// FID Inception weights: `make inception-weights`), and fits a model with a custom layer. The
// README's Swift snippets are the marked parts of these files (scripts/check_snippets.py).

let folder = URL(
    fileURLWithPath: CommandLine.arguments.dropFirst().first
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("sagan-examples-\(getpid())").path)
do {
    let (first, last) = fitWithCustomLayer(steps: 50)
    print(String(format: "custom layer: loss %.4f → %.4f after 50 Adam steps", first, last))
    guard last < first else { throw ExampleFailure("the custom layer's model did not learn") }

    let dataset = try PackedDataset(contentsOf: try DefaultDataset.fashionMNIST())
    let run = folder.appendingPathComponent("run")
    guard case .finished(let steps, _) = try trainTenSteps(on: dataset, into: run), steps == 10 else {
        throw ExampleFailure("training did not finish its 10 steps")
    }
    guard let checkpoint = try RunDirectory(run).checkpointFiles().first else { throw ExampleFailure("no checkpoint") }
    let grid = folder.appendingPathComponent("grid.png")
    try drawGrid(from: checkpoint, to: grid)
    print("wrote \(grid.path)")
    let record = try evaluate(checkpoint, against: dataset)
    guard let kid = record.kid, kid.mean.isFinite else { throw ExampleFailure("no KID") }
    print("examples: all ran; outputs in \(folder.path)")
} catch {
    FileHandle.standardError.write(Data("sagan-examples: \(error)\n".utf8))
    exit(1)
}

struct ExampleFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
