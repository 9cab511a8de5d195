import Autodiff
import Datasets
import FileFormats
import Foundation

/// Images to evaluate: a packed dataset, an image folder or IDX file, or (built by the caller) a
/// generator's samples. Images are fetched in batches, by index.
public struct ImageSet {
    /// What the user named: a path, or a checkpoint with its settings.
    public let name: String
    public let count: Int
    /// Side of every image when all are square and of one size (packed datasets, generators); nil for folders.
    public let side: Int?
    /// 1 or 3 when known for every image; nil for folders.
    public let channels: Int?
    private let fetch: ([Int]) throws -> [PixelImage]
    private let digest: () throws -> String

    public init(
        name: String, count: Int, side: Int?, channels: Int?, fetch: @escaping ([Int]) throws -> [PixelImage],
        digest: @escaping () throws -> String
    ) {
        (self.name, self.count, self.side, self.channels, self.fetch, self.digest) = (
            name, count, side, channels, fetch, digest
        )
    }

    /// A packed dataset (from `sagan dataset pack`), an image folder, or an IDX file, told apart by
    /// their content; `flag` names the option that gave the path, for the message when it is none.
    public static func open(_ path: String, setting: Setting = .real) throws -> ImageSet {
        let kind: InputKind
        do {
            kind = try InputKind.require(path, setting: setting, needs: "a pack, an image folder or an IDX file") {
                $0.isImageSet
            }
        } catch let error as DataError {
            throw EvaluationError.dataset(error)
        }
        if kind == .pack {
            let pack: PackedDataset
            do { pack = try PackedDataset(contentsOf: URL(fileURLWithPath: path)) } catch let error as DataError {
                throw EvaluationError.dataset(error)
            }
            return ImageSet(
                name: path, count: pack.count, side: pack.width == pack.height ? pack.width : nil,
                channels: pack.channels,
                fetch: { try $0.map { try pack.image($0) } },
                digest: {
                    var hasher = SHA256()
                    for index in 0..<pack.count { try pack.withImage(index) { hasher.update($0) } }
                    return hasher.finalize()
                })
        }
        let source: DatasetSource
        do {
            source = try DatasetSource(path: path, setting: setting)
        } catch let error as DataError {
            throw EvaluationError.dataset(error, hint: "give a packed dataset, an image folder or an IDX file")
        }
        guard !source.items.isEmpty else { throw EvaluationError.unreadableImages(path, "no images found") }
        return ImageSet(
            name: path, count: source.items.count, side: nil, channels: nil,
            fetch: { indices in
                try indices.map { index in
                    do { return try source.image(index) } catch let error as DataError {
                        throw EvaluationError.dataset(error)
                    }
                }
            },
            digest: { try source.contentDigest() })
    }

    public func images(_ indices: [Int]) throws -> [PixelImage] { try fetch(indices) }

    /// SHA-256 of the images' contents (reference statistics are cached under it).
    public func contentDigest() throws -> String { try digest() }

    /// The indices an evaluation of `n` images uses: all of them in order when n = count,
    /// otherwise the first n of a permutation drawn from `seed`.
    public func selection(_ n: Int, seed: UInt64) -> [Int] {
        guard n < count else { return Array(0..<count) }
        var random = RandomGenerator(seed: seed)
        var indices = Array(0..<count)
        let draws = random.uniform(count: n)
        for i in 0..<n { indices.swapAt(i, i + min(Int(draws[i] * Float(count - i)), count - i - 1)) }
        return Array(indices.prefix(n))
    }
}

/// Pool3 features of image sets, in batches, with progress.
public struct InceptionFeatureExtractor {
    public let model: InceptionV3
    public let batchSize: Int

    public init(model: InceptionV3, batchSize: Int = 25) {
        self.model = model
        self.batchSize = batchSize
    }

    /// (indices.count × 2048) features, row-major; `progress(done, total)` after each batch.
    public func features(of set: ImageSet, indices: [Int], progress: (Int, Int) -> Void = { _, _ in }) throws -> [Float]
    {
        var features: [Float] = []
        features.reserveCapacity(indices.count * InceptionV3.featureCount)
        for start in stride(from: 0, to: indices.count, by: batchSize) {
            let batch = Array(indices[start..<min(start + batchSize, indices.count)])
            let input = InceptionInput.tensor(try set.images(batch))  // (B, 3, 299, 299)
            features += noGrad { model(input) }.scalars
            progress(start + batch.count, indices.count)
        }
        return features
    }
}
