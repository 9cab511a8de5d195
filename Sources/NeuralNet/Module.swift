import Autodiff

/// A network component with named state.
///
/// Parameters, buffers and sub-modules are found from stored properties (of type `Parameter`,
/// `Buffer`, a `Module`, an optional of those, or an array of modules) and named after the
/// property in snake case, PyTorch-style: `blocks.2.conv.weight`, `norm.running_mean`.
/// Each module has its own training flag.
public protocol Module: AnyObject {
    /// Training mode: batch statistics, spectral-norm power iterations. Set per module;
    /// `setTraining(_:)` sets a whole subtree.
    var isTraining: Bool { get set }
}

extension Module {
    /// Direct sub-modules by property name (array elements as `name.index`).
    public var namedChildren: [(name: String, module: any Module)] {
        var children: [(String, any Module)] = []
        for (label, value) in mirroredProperties {
            if let module = value as? any Module {
                children.append((label, module))
            } else if let modules = value as? [any Module] {
                for (index, module) in modules.enumerated() { children.append(("\(label).\(index)", module)) }
            }
        }
        return children
    }

    /// Every parameter of this module and its descendants, by dotted name, in declaration order.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        var result: [(String, Parameter)] = mirroredProperties.compactMap { label, value in
            (value as? Parameter).map { (label, $0) }
        }
        for (prefix, child) in namedChildren {
            result += child.namedParameters().map { ("\(prefix).\($0.name)", $0.parameter) }
        }
        return result
    }

    /// Every buffer of this module and its descendants, by dotted name.
    public func namedBuffers() -> [(name: String, buffer: Buffer)] {
        var result: [(String, Buffer)] = mirroredProperties.compactMap { label, value in
            (value as? Buffer).map { (label, $0) }
        }
        for (prefix, child) in namedChildren {
            result += child.namedBuffers().map { ("\(prefix).\($0.name)", $0.buffer) }
        }
        return result
    }

    /// This module and every descendant, by dotted path ("" for this module).
    public func namedModules() -> [(name: String, module: any Module)] {
        [("", self)]
            + namedChildren.flatMap { prefix, child in
                child.namedModules().map {
                    (name: $0.name.isEmpty ? prefix : "\(prefix).\($0.name)", module: $0.module)
                }
            }
    }

    /// Every spectrally normalised layer, by module path.
    public func spectrallyNormalizedLayers() -> [(name: String, layer: any WeightLayer)] {
        namedModules().compactMap { name, module in
            (module as? any WeightLayer).flatMap { $0.spectralNorm == nil ? nil : (name, $0) }
        }
    }

    /// σ of every spectrally normalised layer's last forward, by module path.
    public func spectralNorms() -> [(name: String, sigma: Float?)] {
        spectrallyNormalizedLayers().map { ($0.name, $0.layer.lastSigma) }
    }

    /// The parameters in declaration order.
    public var parameters: [Parameter] { namedParameters().map(\.parameter) }

    /// Total trainable elements.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Sets the training flag of this module and all its descendants.
    public func setTraining(_ training: Bool) {
        isTraining = training
        for (_, child) in namedChildren { child.setTraining(training) }
    }

    /// Stored properties with optionals unwrapped (nil ones skipped), including those of superclasses.
    private var mirroredProperties: [(String, Any)] {
        var properties: [(String, Any)] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [Mirror] = []
        while let current = mirror {
            levels.append(current)
            mirror = current.superclassMirror
        }
        for level in levels.reversed() {
            for child in level.children {
                guard let label = child.label, let value = unwrapped(child.value) else { continue }
                properties.append((snakeCase(label), value))
            }
        }
        return properties
    }
}

/// The value inside an optional, or nil for `.none`; non-optionals unchanged.
private func unwrapped(_ value: Any) -> Any? {
    let mirror = Mirror(reflecting: value)
    guard mirror.displayStyle == .optional else { return value }
    return mirror.children.first.map { unwrapped($0.value) } ?? nil
}

/// `runningMean` → `running_mean`: Swift property names as PyTorch state names.
func snakeCase(_ name: String) -> String {
    var result = ""
    for character in name {
        if character.isUppercase {
            if !result.isEmpty { result.append("_") }
            result.append(contentsOf: character.lowercased())
        } else {
            result.append(character)
        }
    }
    return result
}
