import Synchronization

/// The backends this process can run, each under its `BackendID`, with the preference that makes one
/// the default: the available backend with the highest preference is `fastest`.
public enum BackendRegistry {
    /// The pure-Swift oracle; always available.
    public static let reference = ReferenceBackend()

    private struct Entry {
        let backend: any Backend
        let preference: Int
    }

    /// What this build contains: the reference (preference 0) and, where its engine starts, oneDNN.
    private static let entries = Mutex<[Entry]>(
        [Entry(backend: reference, preference: 0)]
            + (OneDNNBackend.shared.map { [Entry(backend: $0, preference: OneDNNBackend.preference)] } ?? []))

    /// Makes `backend` selectable by its id. The default backend is the available one with the highest
    /// preference, so a backend meant only when asked for (a test double) registers below 0.
    public static func register(_ backend: any Backend, preference: Int) throws(RegistrationError) {
        try entries.withLock { entries throws(RegistrationError) in
            if entries.contains(where: { $0.backend.id == backend.id }) { throw .duplicate(backend.id) }
            entries.append(Entry(backend: backend, preference: preference))
        }
    }

    /// Every backend that can run here, in the order they were registered (the reference first).
    public static var available: [any Backend] { entries.withLock { $0.map(\.backend) } }

    /// The available backend with the highest preference: oneDNN where its engine starts.
    public static var fastest: any Backend {
        entries.withLock { entries in entries.max { $0.preference < $1.preference }!.backend }
    }

    /// The backend registered as `id`, if available.
    public static func backend(_ id: BackendID) -> (any Backend)? {
        entries.withLock { $0.first { $0.backend.id == id }?.backend }
    }

    public enum RegistrationError: Error, Equatable, CustomStringConvertible {
        case duplicate(BackendID)

        public var description: String {
            switch self {
            case .duplicate(let id): return "a backend called \(id) is registered already"
            }
        }
    }
}
