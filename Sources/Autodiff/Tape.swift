import FileFormats
import Kernels

/// One recorded operation (or a leaf) of the differentiation graph.
///
/// Nodes point only to the nodes of their inputs, never to their outputs, so the graph has no
/// cycles and ARC frees it with the last tensor that refers to it. Pullbacks capture the storages
/// they need, never the output tensor itself.
final class TapeNode: @unchecked Sendable {
    /// The nodes of the inputs, in pullback order; nil where an input does not need gradients.
    let parents: [TapeNode?]
    /// Maps the output gradient to one gradient per input; the mask says which are wanted.
    let pullback: ((Tensor, [Bool]) -> [Tensor?])?
    let shape: [Int]
    let name: StaticString

    init(leafShape: [Int]) {
        parents = []
        pullback = nil
        shape = leafShape
        name = "leaf"
    }

    init(name: StaticString, shape: [Int], parents: [TapeNode?], pullback: @escaping (Tensor, [Bool]) -> [Tensor?]) {
        self.name = name
        self.shape = shape
        self.parents = parents
        self.pullback = pullback
    }
}

extension Tensor {
    /// The result of an operation: differentiable when recording is on and an input is.
    ///
    /// `pullback` receives the output gradient and a mask over `inputs`, and returns a gradient
    /// (shaped like that input) for each input whose mask entry is true.
    static func record(
        _ name: StaticString, shape: [Int], storage: Storage, inputs: [Tensor],
        pullback: @escaping (_ gradient: Tensor, _ wanted: [Bool]) -> [Tensor?]
    ) -> Tensor {
        guard EngineContext.isRecording, inputs.contains(where: { $0.node != nil }) else {
            return Tensor(shape: shape, storage: storage, node: nil)
        }
        let node = TapeNode(name: name, shape: shape, parents: inputs.map(\.node), pullback: pullback)
        return Tensor(shape: shape, storage: storage, node: node)
    }
}

/// The gradients of a scalar `loss` with respect to each of `leaves`, in order.
///
/// Only operations on a path from a leaf to the loss are differentiated, and each pullback is told
/// which of its inputs need a gradient (a discriminator used in the generator's step computes no
/// weight gradients). A leaf the loss does not depend on gets zeros.
public func gradients(of loss: Tensor, wrt leaves: [Tensor]) -> [Tensor] {
    require(loss.count == 1, "gradients(of:wrt:): the loss must have one element, its shape is \(loss.shape)")
    for leaf in leaves {
        require(
            leaf.node?.pullback == nil && leaf.node != nil,
            "gradients(of:wrt:): every wrt tensor must be a leaf made by trackingGradients(); one of shape "
                + "\(leaf.shape) is not"
        )
    }
    guard let root = loss.node else { return leaves.map { Tensor.zeros($0.shape) } }
    let targets = Set(leaves.compactMap { $0.node.map(ObjectIdentifier.init) })

    // Post-order walk: every node comes after all of its parents.
    var order: [TapeNode] = []
    var needed: [ObjectIdentifier: Bool] = [:]
    var stack: [(TapeNode, Int)] = [(root, 0)]
    var visited: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
    while let (node, next) = stack.popLast() {
        if next < node.parents.count {
            stack.append((node, next + 1))
            if let parent = node.parents[next], visited.insert(ObjectIdentifier(parent)).inserted {
                stack.append((parent, 0))
            }
        } else {
            let id = ObjectIdentifier(node)
            needed[id] =
                targets.contains(id)
                || node.parents.contains { $0.map { needed[ObjectIdentifier($0)] ?? false } ?? false }
            order.append(node)
        }
    }

    var accumulated: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): Tensor.ones(root.shape)]
    var results: [ObjectIdentifier: Tensor] = [:]
    noGrad {
        for node in order.reversed() {
            let id = ObjectIdentifier(node)
            guard needed[id] == true, let gradient = accumulated.removeValue(forKey: id) else { continue }
            if targets.contains(id) { results[id] = gradient }
            guard let pullback = node.pullback else { continue }
            let wanted = node.parents.map { $0.map { needed[ObjectIdentifier($0)] ?? false } ?? false }
            let inputGradients = pullback(gradient, wanted)
            for (parent, parentGradient) in zip(node.parents, inputGradients) {
                guard let parent, let parentGradient, needed[ObjectIdentifier(parent)] == true else { continue }
                require(
                    parentGradient.shape == parent.shape,
                    "autodiff: pullback of \(node.name) returned a gradient of shape \(parentGradient.shape) for an "
                        + "input of shape \(parent.shape)"
                )
                let parentID = ObjectIdentifier(parent)
                if let existing = accumulated[parentID] {
                    accumulated[parentID] = existing + parentGradient
                } else {
                    accumulated[parentID] = parentGradient
                }
            }
        }
    }
    return leaves.map { leaf in results[ObjectIdentifier(leaf.node!)] ?? Tensor.zeros(leaf.shape) }
}

/// Evaluates `body` and returns its scalar value with the gradients of that value with respect to
/// each of `leaves`. Gradients are returned, not stored: there is nothing to zero between steps.
public func valueAndGradients(of body: () throws -> Tensor, wrt leaves: [Tensor]) rethrows -> (
    value: Tensor, gradients: [Tensor]
) {
    let value = try EngineContext.$isRecording.withValue(true) { try body() }
    return (value.detached(), gradients(of: value, wrt: leaves))
}
