import Autodiff
import NeuralNet

/// One row of `sagan inspect`: a layer's name, kind, output shape, parameters and cost per image.
public struct LayerSummary: Sendable, Equatable {
    public let name: String
    public let kind: String
    /// Per image (batch 1).
    public let outputShape: [Int]
    public let parameters: Int
    /// Multiply-accumulates of one forward pass per image.
    public let multiplyAccumulates: Int
}

extension Generator {
    /// Each layer's output shape, parameters and multiply-accumulates for one image.
    public func summary() -> [LayerSummary] {
        let first = config.channels(atSide: 4)
        var rows = [
            LayerSummary(
                name: "project", kind: project.summary + " + reshape", outputShape: [first, 4, 4],
                parameters: project.parameterCount,
                multiplyAccumulates: project.multiplyAccumulates(forInput: [1, config.latentSize]))
        ]
        if let projectNorm {
            rows.append(
                LayerSummary(
                    name: "project_norm", kind: "BatchNorm2d", outputShape: [first, 4, 4],
                    parameters: projectNorm.parameterCount, multiplyAccumulates: 0))
        }
        var shape = [1, first, 4, 4]
        for (index, block) in blocks.enumerated() {
            rows.append(row("blocks.\(index)", block, &shape))
        }
        rows.append(row("output", output, &shape, then: " → tanh"))
        return rows
    }
}

extension Discriminator {
    public func summary() -> [LayerSummary] {
        var shape = [1, config.imageChannels, config.resolution, config.resolution]
        var rows: [LayerSummary] = []
        for (index, block) in blocks.enumerated() {
            rows.append(row("blocks.\(index)", block, &shape))
        }
        rows.append(
            LayerSummary(
                name: "head", kind: head.summary + " (flatten →)", outputShape: [1], parameters: head.parameterCount,
                multiplyAccumulates: head.multiplyAccumulates(forInput: [1, shape.dropFirst().reduce(1, *)])))
        if let projection {
            rows.append(
                LayerSummary(
                    name: "projection", kind: "class projection ⟨embed(y), features⟩", outputShape: [1],
                    parameters: projection.parameterCount, multiplyAccumulates: projection.weight.shape[1]))
        }
        return rows
    }
}

/// The row of `layer` for an input of `shape` (which becomes its output shape); `then` follows its kind.
private func row(_ name: String, _ layer: any Layer, _ shape: inout [Int], then: String = "") -> LayerSummary {
    let macs = layer.multiplyAccumulates(forInput: shape)
    shape = layer.outputShape(forInput: shape)
    return LayerSummary(
        name: name, kind: layer.summary + then, outputShape: Array(shape.dropFirst()), parameters: layer.parameterCount,
        multiplyAccumulates: macs)
}
