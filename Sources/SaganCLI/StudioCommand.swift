import ArgumentParser
import Dispatch
import Foundation
import Hummingbird
import Studio

/// `sagan studio`: a local web page to watch runs, generate images and click through attention.
struct StudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "studio",
        abstract: "Serve a web page of the runs in a folder: curves, samples, a generator playground, attention.")

    @Option(help: "The folder of runs to show (runs are found up to three levels down; default: ./runs).")
    var runs: String?
    @Option(help: "The address to listen on; any but loopback needs --token.") var host = "127.0.0.1"
    @Option(help: "The port to listen on (0: any free port).") var port = 7860
    @Option(help: "A secret every request must carry (in the printed address); required off loopback.")
    var token: String?
    @OptionGroup var engine: EngineOptions

    func run() throws {
        var options = StudioOptions(runs: URL(fileURLWithPath: runs ?? "runs"))
        // ./runs may not exist yet: the page then says how to start a run. A folder named by --runs must.
        options.runsMayBeMissing = runs == nil
        (options.host, options.port, options.token) = (host, port, token)
        options.engine = engine.configuration
        do {
            try options.validate()
        } catch let error as StudioError {
            throw ValidationError(error.description)
        }
        _ = try engine.run { () }  // refuses an unknown backend or bf16 here before the server starts
        let settings = options
        let outcome = Outcome()
        let application = try StudioServer.application(settings) { port in
            outcome.started = true
            let line = "sagan studio: \(settings.address(port: port)) (runs in \(settings.runs.path); Ctrl-C stops)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        let finished = DispatchSemaphore(value: 0)
        Task {
            do { try await application.runService() } catch { outcome.error = error }
            finished.signal()
        }
        finished.wait()
        if let error = outcome.error {
            guard outcome.started else {
                throw ValidationError("--host \(host) --port \(port): cannot listen there (\(error))")
            }
            throw error
        }
    }
}

/// Whether the server started, and its error, handed to the waiting command (written before the
/// semaphore is signalled, read after).
private final class Outcome: @unchecked Sendable {
    var started = false
    var error: (any Error)?
}
