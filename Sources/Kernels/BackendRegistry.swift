/// The backends this build can run.
public enum BackendRegistry {
    /// The pure-Swift oracle; always available.
    public static let reference = ReferenceBackend()

    /// Every backend, the reference first.
    public static var available: [any Backend] { [reference] }

    /// The fastest available backend.
    public static var fastest: any Backend { available.last! }
}
