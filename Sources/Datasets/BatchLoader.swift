import Autodiff
import Foundation

/// Where a loader is in its stream of batches: saved in checkpoints so a resumed run sees exactly
/// the batches it would have seen.
public struct LoaderCursor: Codable, Hashable, Sendable {
    public var epoch: Int
    /// Images of this epoch already handed out.
    public var position: Int

    public init(epoch: Int = 0, position: Int = 0) {
        self.epoch = epoch
        self.position = position
    }
}

/// One training batch.
public struct Batch: @unchecked Sendable {
    /// (B, C, H, W) in [−1, 1].
    public let images: Tensor
    /// Class indices, when the dataset has labels.
    public let labels: [Int]?
    /// The cursor after this batch.
    public let cursor: LoaderCursor

    public init(images: Tensor, labels: [Int]?, cursor: LoaderCursor) {
        self.images = images
        self.labels = labels
        self.cursor = cursor
    }
}

/// Batches from a packed dataset, prepared on a background thread while training computes.
///
/// Every epoch visits the images in a permutation drawn from (seed, epoch); flips and
/// dequantisation noise are drawn from (seed, epoch, position), so a batch depends only on the
/// seed and its cursor, and a loader started from a saved cursor continues exactly. The last
/// incomplete batch of an epoch is dropped.
public final class BatchLoader: @unchecked Sendable {
    public struct Options: Sendable {
        public var batchSize: Int
        public var seed: UInt64
        /// Mirror each image horizontally with probability ½.
        public var horizontalFlip: Bool
        /// x/128 − 1 + U[0, 1/128) (the article's code) instead of x/127.5 − 1.
        public var dequantize: Bool
        /// Batches prepared ahead.
        public var prefetch: Int

        public init(
            batchSize: Int, seed: UInt64 = 0, horizontalFlip: Bool = false, dequantize: Bool = false, prefetch: Int = 2
        ) {
            self.batchSize = batchSize
            self.seed = seed
            self.horizontalFlip = horizontalFlip
            self.dequantize = dequantize
            self.prefetch = prefetch
        }
    }

    public let dataset: PackedDataset
    public let options: Options
    private let condition = NSCondition()
    private var queue: [Batch] = []
    private var producerCursor: LoaderCursor
    private var stopped = false
    private var failure: Error?
    private var thread: Thread?

    public init(dataset: PackedDataset, options: Options, cursor: LoaderCursor = LoaderCursor()) throws {
        guard options.batchSize >= 1, options.batchSize <= dataset.count else {
            throw DataError(
                .invalidArgument, dataset.url.path,
                "batch size \(options.batchSize) must be 1 to the dataset's \(dataset.count) images")
        }
        guard cursor.epoch >= 0, cursor.position >= 0, cursor.position <= dataset.count else {
            throw DataError(
                .invalidArgument, dataset.url.path, "cursor \(cursor) is outside the dataset of \(dataset.count) images"
            )
        }
        self.dataset = dataset
        self.options = options
        producerCursor = cursor
        let thread = Thread { [weak self] in
            ThreadAffinity.allowProcessCPUs()
            self?.produce()
        }
        thread.name = "sagan batch loader"
        thread.qualityOfService = .userInitiated
        self.thread = thread
        thread.start()
    }

    deinit { stop() }

    /// Stops the background thread (also done when the loader is released).
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch; waits only if the background thread has not prepared it yet.
    public func next() throws -> Batch {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && failure == nil { condition.wait() }
        if let failure { throw failure }
        let batch = queue.removeFirst()
        condition.broadcast()
        return batch
    }

    private func produce() {
        // The epoch's permutation, drawn once per epoch rather than once per batch.
        var order: (epoch: Int, indices: [Int])?
        let permutation = { (epoch: Int) -> [Int] in
            if let order, order.epoch == epoch { return order.indices }
            let indices = Self.permutation(count: self.dataset.count, seed: self.options.seed, epoch: epoch)
            order = (epoch, indices)
            return indices
        }
        while true {
            condition.lock()
            while queue.count >= max(options.prefetch, 1) && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let cursor = producerCursor
            condition.unlock()
            do {
                let batch = try Self.makeBatch(
                    dataset: dataset, options: options, cursor: cursor, permutation: permutation)
                condition.lock()
                queue.append(batch)
                producerCursor = batch.cursor
                condition.broadcast()
                condition.unlock()
            } catch {
                condition.lock()
                failure = error
                condition.broadcast()
                condition.unlock()
                return
            }
        }
    }

    /// The image order of `epoch`: a Fisher–Yates permutation from the seed.
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var generator = RandomGenerator(seed: seed).derived(purpose: 0x5EED_0000 &+ UInt64(epoch))
        var order = Array(0..<count)
        var index = count - 1
        while index > 0 {
            let (a, b, c, d) = generator.nextBlock()
            for word in [a, b, c, d] where index > 0 {
                let other = Int((UInt64(word) * UInt64(index + 1)) >> 32)
                order.swapAt(index, other)
                index -= 1
            }
        }
        return order
    }

    /// The batch that starts at `cursor` (moving to the next epoch when too few images remain).
    /// `permutation` gives an epoch's image order; by default it is drawn from the seed.
    public static func makeBatch(
        dataset: PackedDataset, options: Options, cursor start: LoaderCursor,
        permutation order: ((Int) -> [Int])? = nil
    ) throws -> Batch {
        var cursor = start
        if cursor.position + options.batchSize > dataset.count {
            cursor = LoaderCursor(epoch: cursor.epoch + 1, position: 0)
        }
        let order = order?(cursor.epoch) ?? permutation(count: dataset.count, seed: options.seed, epoch: cursor.epoch)
        let (height, width, channels) = (dataset.height, dataset.width, dataset.channels)
        let plane = height * width
        var values = [Float](repeating: 0, count: options.batchSize * channels * plane)
        var labels: [Int]? = dataset.hasLabels ? [] : nil
        // Random access into the stream: (seed, epoch) keys the generator, the position sets its counter.
        var noise = RandomGenerator(seed: options.seed).derived(purpose: 0xF11F_0000 &+ UInt64(cursor.epoch))
        for slot in 0..<options.batchSize {
            let index = order[cursor.position + slot]
            noise.counter = UInt64(cursor.position + slot) << 32
            let flip = options.horizontalFlip && noise.uniform(count: 1)[0] < 0.5
            let jitter = options.dequantize ? noise.uniform(count: channels * plane) : []
            try dataset.withImage(index) { pixels in
                let base = slot * channels * plane
                for y in 0..<height {
                    for x in 0..<width {
                        let sourceX = flip ? width - 1 - x : x
                        for c in 0..<channels {
                            let value = Float(pixels[(y * width + sourceX) * channels + c])
                            let target = c * plane + y * width + x
                            values[base + target] =
                                options.dequantize ? value / 128 - 1 + jitter[target] / 128 : value / 127.5 - 1
                        }
                    }
                }
            }
            labels?.append(dataset.label(index)!)
        }
        cursor.position += options.batchSize
        return Batch(
            images: Tensor(shape: [options.batchSize, channels, height, width], scalars: values), labels: labels,
            cursor: cursor)
    }
}
