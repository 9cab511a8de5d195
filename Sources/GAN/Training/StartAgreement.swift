import Autodiff

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
