import Autodiff
import Datasets
import Foundation

/// Runs `body` (a rank's start-up: opening the data, the run folder, the checkpoint) on every rank
/// of `group`, then compares the outcomes, so that one rank's failure stops the whole job at
/// start-up instead of leaving the others waiting in a collective. When some rank failed, rank 0
/// throws its own error if it failed, otherwise `TrainingRunError.rankFailed` with the lowest
/// failing rank's message; the other ranks throw `rankFailed` (for rank 0 to report).
public func agreeingOnStart<T>(_ group: (any ProcessGroup)?, _ body: () throws -> T) throws -> T {
    guard let group, group.size > 1 else { return try body() }
    let outcome = Result { try body() }
    var message = [UInt8](repeating: 0, count: 1024)
    if case .failure(let error) = outcome {
        message[0] = 1
        let text = Array(String(describing: error).utf8.prefix(message.count - 2))
        message.replaceSubrange(1..<1 + text.count, with: text)
    }
    let all = group.gather(message)
    guard let failed = all.firstIndex(where: { $0[0] == 1 }) else { return try outcome.get() }
    if group.rank == 0, case .failure(let error) = outcome { throw error }
    let text = String(decoding: all[failed].dropFirst().prefix { $0 != 0 }, as: UTF8.self)
    throw TrainingRunError.rankFailed(rank: failed, message: text)
}

extension TrainingRun {
    /// Starts a run on every rank of `options.group` (or in this process alone): opens the dataset
    /// and sets up the run, stopping the whole job when any rank fails (`agreeingOnStart`). When
    /// resuming under a group, rank 0 alone looks for the checkpoint in the run folder and sends
    /// its bytes to the other ranks, so only rank 0's machine needs the run folder, and every rank
    /// starts from the very same file.
    public static func starting(
        _ options: TrainingRunOptions, dataset open: () throws -> PackedDataset,
        notify: (TrainingRunEvent) -> Void = { _ in }
    ) throws -> TrainingRun {
        guard let group = options.group, group.size > 1, let resume = options.resume else {
            return try agreeingOnStart(options.group) {
                let run = try TrainingRun(options, dataset: try open(), notify: notify)
                try run.checkMemory()
                return run
            }
        }
        let (dataset, found) = try agreeingOnStart(group) { () -> (PackedDataset, URL?) in
            let dataset = try open()
            guard group.rank == 0 else { return (dataset, nil) }
            let folder = options.folder ?? nextFolder(in: options.runsFolder, preset: options.preset ?? .tiny32)
            // Finding it reads it (an unreadable one is passed over); the run set up below reads it again.
            let found = try resumed(resume, options, dataset, folder) { event in
                if case .resumed = event { return }
                if case .datasetDiffers = event { return }
                notify(event)
            }
            return (dataset, found?.1)
        }
        var shared = options
        let path = group.broadcast(found.map { Array($0.path.utf8) }, from: 0)
        if path.isEmpty {
            shared.resume = nil  // --resume auto found nothing: a new run on every rank
        } else {
            let file = URL(fileURLWithPath: String(decoding: path, as: UTF8.self))
            let bytes = try agreeingOnStart(group) { group.rank == 0 ? Array(try Data(contentsOf: file)) : nil }
            shared.resume = .received(Data(group.broadcast(bytes, from: 0)), from: file)
        }
        return try agreeingOnStart(group) {
            let run = try TrainingRun(shared, dataset: dataset, notify: notify)
            try run.checkMemory()
            return run
        }
    }
}
