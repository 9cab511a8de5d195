import Autodiff
import Foundation
import Hummingbird
import Logging
import NIOCore

/// What `sagan studio` serves and where.
public struct StudioOptions: Sendable {
    /// The folder of runs; nothing outside it is read or served.
    public var runs: URL
    public var host = "127.0.0.1"
    /// 0 picks a free port (the server reports which).
    public var port = 7860
    /// Required on any address but loopback; then every request must carry it.
    public var token: String?
    public var engine = EngineConfiguration()
    /// The largest image upload accepted, in bytes.
    public var uploadLimit = 8 << 20
    /// Memory for cached models (and half as much for attention recordings), in bytes.
    public var modelMemory = 1 << 30
    /// A connection that sends nothing for this long is closed (a client that connects and says
    /// nothing must not hold a connection for ever); a response being written keeps it open.
    public var idleTimeout: Duration = .seconds(60)

    /// Serve an empty list when `runs` does not exist yet (the default folder, before the first run).
    public var runsMayBeMissing = false

    public init(runs: URL) { self.runs = runs }

    /// The hosts that are only reachable from this machine.
    public static let loopbackHosts: Set<String> = ["127.0.0.1", "::1", "localhost"]

    /// Refuses settings that would expose the runs or cannot work, naming the flag.
    public func validate() throws {
        var isFolder: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: runs.path, isDirectory: &isFolder)
        guard exists ? isFolder.boolValue : runsMayBeMissing else {
            throw StudioError.invalidOption("--runs", "--runs \(runs.path): no such folder")
        }
        guard (0...65535).contains(port) else {
            throw StudioError.invalidOption("--port", "--port must be 0 to 65535, got \(port)")
        }
        if !Self.loopbackHosts.contains(host) && (token ?? "").isEmpty {
            throw StudioError.invalidOption(
                "--token",
                "--host \(host) serves other machines: give --token SECRET (every request must then carry it)")
        }
        if let token, token.count < 8 || token.contains(where: { !$0.isASCII || $0.isWhitespace }) {
            throw StudioError.invalidOption("--token", "--token must be at least 8 printable ASCII characters")
        }
    }

    /// The address to open, with the token when there is one.
    public func address(port: Int) -> String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return "http://\(shown):\(port)/" + (token.map { "?token=\($0)" } ?? "")
    }
}

/// A setting `sagan studio` cannot run with; the message names the flag.
public enum StudioError: Error, CustomStringConvertible {
    case invalidOption(_ flag: String, _ message: String)

    public var description: String {
        switch self {
        case .invalidOption(_, let message): return message
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The studio's web server: the page, its JSON API and the live updates.
public enum StudioServer {
    /// The server for `options`, not yet running; `onRunning` gets the port it listens on.
    public static func application(
        _ options: StudioOptions, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try options.validate()
        var logger = Logger(label: "sagan-studio")
        logger.logLevel = .warning
        let router = Router()
        router.add(middleware: BrowserSafety())
        router.add(middleware: ErrorMessages())
        router.add(
            middleware: AccessControl(
                token: options.token, loopbackOnly: StudioOptions.loopbackHosts.contains(options.host)))
        StudioPage.addRoutes(to: router)
        StudioAPI(options: options).addRoutes(to: router)
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: TimeAmount(options.idleTimeout))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sagan-studio"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? options.port) },
            logger: logger)
    }
}
