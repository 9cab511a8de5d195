import Autodiff
import Foundation
import GAN
import NeuralNet

/// The models, attention recordings and uploaded images the studio keeps in memory, each kind
/// within a byte budget, the least recently used dropped first. Only jobs on the compute queue touch
/// it, one at a time; that is what makes it safe to share.
final class StudioModels: @unchecked Sendable {
    private var generators: LeastRecentlyUsed<String, LoadedGenerator>
    private var recordings: LeastRecentlyUsed<String, AttentionRecording>
    private var uploads = LeastRecentlyUsed<String, Tensor>(budget: 64 << 20)

    init(memoryBudget: Int) {
        generators = LeastRecentlyUsed(budget: memoryBudget)
        recordings = LeastRecentlyUsed(budget: memoryBudget / 2)
    }

    /// Names a checkpoint's G or G-EMA as the file is now: a file written again (best.safetensors
    /// during training) is another model, and its recordings are other recordings.
    static func key(_ file: URL, ema: Bool) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(file.path)|\(ema)|\(modified)|\(attributes?[.size] as? Int ?? 0)"
    }

    /// G (or G-EMA) and D of a checkpoint, loaded once while the file stays the same.
    func generator(_ file: URL, ema: Bool) throws -> LoadedGenerator {
        let key = Self.key(file, ema: ema)
        if let cached = generators[key] { return cached }
        let loaded = try LoadedGenerator(contentsOf: file, ema: ema)
        let floats = [loaded.generator as any Module, loaded.discriminator as (any Module)?].compactMap { $0 }
            .reduce(0) { total, module in total + module.stateTensors(prefix: "").reduce(0) { $0 + $1.tensor.count } }
        generators.insert(loaded, for: key, cost: 4 * floats)
        return loaded
    }

    /// The recording of `key` (a model and a subject), made by `record` if it is not kept.
    func recording(_ key: String, _ record: () throws -> AttentionRecording) throws -> AttentionRecording {
        if let cached = recordings[key] { return cached }
        let recording = try record()
        recordings.insert(recording, for: key, cost: 4 * recording.layers.reduce(0) { $0 + $1.weights.count })
        return recording
    }

    /// Keeps an uploaded image (C, R, R) under its id.
    func keepUpload(_ image: Tensor, id: String) { uploads.insert(image, for: id, cost: 4 * image.count) }

    func upload(_ id: String) -> Tensor? { uploads[id] }
}

/// A cache that holds values up to a total cost and drops the least recently used beyond it; the
/// newest value is kept even when it alone is over the budget.
struct LeastRecentlyUsed<Key: Hashable, Value> {
    let budget: Int
    private var entries: [Key: (value: Value, cost: Int, used: Int)] = [:]
    private var clock = 0
    private(set) var total = 0

    init(budget: Int) { self.budget = budget }

    subscript(key: Key) -> Value? {
        mutating get {
            guard let entry = entries[key] else { return nil }
            clock += 1
            entries[key] = (entry.value, entry.cost, clock)
            return entry.value
        }
    }

    mutating func insert(_ value: Value, for key: Key, cost: Int) {
        if let old = entries.removeValue(forKey: key) { total -= old.cost }
        clock += 1
        entries[key] = (value, cost, clock)
        total += cost
        while total > budget, entries.count > 1, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            entries.removeValue(forKey: oldest.key)
            total -= oldest.value.cost
        }
    }

    var count: Int { entries.count }
}
