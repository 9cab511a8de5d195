import Autodiff
import Foundation

/// A network component with named state.
///
/// Parameters, buffers and sub-modules are found from stored properties (of type `Parameter`,
/// `Buffer`, a `Module`, an optional of those, or an array of modules) and named after the
/// property in snake case, PyTorch-style: `blocks.2.conv.weight`, `norm.running_mean`. State whose
/// checkpoint name is not a property name sits in a `StateGroup`, which names it explicitly.
/// Each module has its own training flag.
public protocol Module: AnyObject {
    /// Training mode: batch statistics, spectral-norm power iterations. Set per module;
    /// `setTraining(_:)` sets a whole subtree.
    var isTraining: Bool { get set }
}

/// Parameters and buffers a helper object keeps for its module, named by explicit keys (the
/// checkpoint names) at the module's level rather than under the property that holds the helper:
/// a layer's spectral-norm state gives `weight_u` and `weight_v`, as PyTorch names them.
public protocol StateGroup: AnyObject {
    /// Each key with its `Parameter` or `Buffer`.
    var keyedState: [(key: String, state: AnyObject)] { get }
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

    /// The stored properties that hold parameters, buffers or modules, with optionals unwrapped (nil
    /// ones skipped), superclasses' first. Reflected once per module and then cached: a module's
    /// structure is fixed when it is made (these properties are `let`).
    fileprivate var mirroredProperties: [(String, Any)] {
        if let cached = ReflectionCache.shared.properties(of: self) { return cached }
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
                if let group = value as? any StateGroup {
                    properties += group.keyedState.map { ($0.key, $0.state as Any) }
                    continue
                }
                guard value is Parameter || value is Buffer || value is any Module || value is [any Module] else {
                    continue
                }
                properties.append((snakeCase(label), value))
            }
        }
        ReflectionCache.shared.store(properties, of: self)
        return properties
    }
}

/// The reflected properties of every live module, keyed by identity. Entries refer to the module
/// and its properties weakly, so the cache keeps nothing alive; an entry whose module has gone (its
/// identifier may be reused) is ignored, and such entries are swept away as the cache grows.
private final class ReflectionCache: @unchecked Sendable {
    static let shared = ReflectionCache()

    private final class Weak {
        weak var object: AnyObject?
        init(_ object: AnyObject) { self.object = object }
    }

    private struct Entry {
        weak var owner: AnyObject?
        let labels: [String]
        /// One box per property; a module array has one box per element and `isList` set.
        let values: [(boxes: [Weak], isList: Bool)]
    }

    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    private var sweepAt = 256

    /// The cached properties of `module`, or nil when they are not cached.
    func properties(of module: AnyObject) -> [(String, Any)]? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[ObjectIdentifier(module)], entry.owner === module else { return nil }
        var result: [(String, Any)] = []
        for (label, value) in zip(entry.labels, entry.values) {
            let objects = value.boxes.compactMap(\.object)
            guard objects.count == value.boxes.count else { return nil }
            if value.isList {
                result.append((label, objects.map { $0 as! any Module }))
            } else {
                result.append((label, objects[0]))
            }
        }
        return result
    }

    /// Caches `properties` (parameters, buffers, modules and module arrays) of `module`.
    func store(_ properties: [(String, Any)], of module: AnyObject) {
        let values = properties.map { _, value in
            if let modules = value as? [any Module] { return (boxes: modules.map { Weak($0) }, isList: true) }
            return (boxes: [Weak(value as AnyObject)], isList: false)
        }
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= sweepAt {
            entries = entries.filter { $0.value.owner != nil }
            sweepAt = max(256, 2 * entries.count)
        }
        entries[ObjectIdentifier(module)] = Entry(owner: module, labels: properties.map(\.0), values: values)
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
