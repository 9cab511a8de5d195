/// The backends this build can run.
public enum BackendRegistry {
    /// The pure-Swift oracle; always available.
    public static let reference = ReferenceBackend()

    /// Every backend that can run here, the reference first.
    public static var available: [any Backend] { [reference] + (OneDNNBackend.shared.map { [$0] } ?? []) }

    /// The fastest available backend: oneDNN when its engine starts, otherwise the reference.
    public static var fastest: any Backend { available.last! }

    /// The backend called `name` ("reference" or "onednn"), if available.
    public static func named(_ name: String) -> (any Backend)? { available.first { $0.name == name } }
}
