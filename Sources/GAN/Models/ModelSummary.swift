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
                name: "project", kind: kind(project) + " + reshape", outputShape: [first, 4, 4],
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
        rows.append(row("output", output, &shape))
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
                name: "head", kind: kind(head) + " (flatten →)", outputShape: [1], parameters: head.parameterCount,
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

private func row(_ name: String, _ layer: any Layer, _ shape: inout [Int]) -> LayerSummary {
    let macs = layer.multiplyAccumulates(forInput: shape)
    shape = layer.outputShape(forInput: shape)
    return LayerSummary(
        name: name, kind: kind(layer), outputShape: Array(shape.dropFirst()), parameters: layer.parameterCount,
        multiplyAccumulates: macs)
}

/// A readable description of a layer: its type, SN marker and key settings.
private func kind(_ layer: any Module) -> String {
    switch layer {
    case let block as UpBlock:
        let norm = block.classScale != nil ? "class-conditional BN" : "BN(\(block.norm.weight == nil ? "β" : "γ,β"))"
        return "\(block.conv.weightU == nil ? "" : "SN ")ConvTranspose 4x4/2 → \(norm) → ReLU"
    case let block as DownBlock:
        return
            "\(block.conv.weightU == nil ? "" : "SN ")Conv 4x4/2\(block.norm == nil ? "" : " → BN") → "
            + "LeakyReLU(\(block.slope))"
    case let attention as PaperSelfAttention:
        return "SelfAttention(paper, C=\(attention.h.weight.shape[0]))"
    case let attention as BigGANSelfAttention:
        return "SelfAttention(biggan, C=\(attention.o.weight.shape[0]))"
    case let conv as Conv2d:
        return
            "\(conv.weightU == nil ? "" : "SN ")Conv \(conv.weight.shape[2])x\(conv.weight.shape[3])/\(conv.stride) → "
            + "tanh"
    case let conv as ConvTranspose2d:
        return
            "\(conv.weightU == nil ? "" : "SN ")ConvTranspose "
            + "\(conv.weight.shape[2])x\(conv.weight.shape[3])/\(conv.stride) → tanh"
    case let linear as Linear:
        return "\(linear.weightU == nil ? "" : "SN ")Dense \(linear.weight.shape[1])→\(linear.weight.shape[0])"
    default:
        return String(describing: type(of: layer))
    }
}
