import Autodiff
import Datasets
import FileFormats
import Foundation
import NeuralNet

/// Whose attention to look at: G's while it generates, or D's while it judges an image.
public enum AttentionSubject {
    /// G's layer while it draws the image of `seed`.
    case generator(seed: Int)
    /// D's layer on an image (C, R, R) in [−1, 1].
    case discriminator(image: Tensor)
}

/// One attention layer's weights from a recorded forward pass.
public struct RecordedAttention: Sendable {
    /// "G.blocks.2": the network and the block's index, as in metrics.jsonl's γ tags.
    public let name: String
    public let gamma: Float
    /// The query grid's side (the layer's feature map) and the key grid's (pooled for BigGAN's variant).
    public let querySide: Int
    public let keySide: Int
    /// Row-major (queries, keys): row q is where query position q draws from.
    public let weights: [Float]

    /// Each query's row as a square map over the key grid. Queries are in pixels of an image of side
    /// `resolution`; each falls in the query cell that covers it.
    public func maps(queries: [(x: Int, y: Int)], resolution: Int) throws -> [[Float]] {
        let keyCount = keySide * keySide
        return try queries.map { query in
            guard (0..<resolution).contains(query.x), (0..<resolution).contains(query.y) else {
                throw ConfigurationError.invalidArgument(
                    .query, "\(Setting.query) \(query.x),\(query.y) is outside the \(resolution)x\(resolution) image")
            }
            let row = (query.y * querySide / resolution) * querySide + query.x * querySide / resolution
            return Array(weights[(row * keyCount)..<((row + 1) * keyCount)])
        }
    }
}

/// Every attention layer of G while it draws an image, or of D while it judges one, recorded in
/// one forward pass: what `sagan inspect attention` and `sagan studio` draw their maps from.
public struct AttentionRecording: Sendable {
    /// The image looked at, (C, R, R) in [−1, 1].
    public let image: Tensor
    /// The network's attention layers in order.
    public let layers: [RecordedAttention]

    /// Runs G (for `.generator`, with `truncation` if given) or D once with every attention layer
    /// recording. `classIndex` conditions class-conditional models (default class 0).
    public init(
        _ loaded: LoadedGenerator, subject: AttentionSubject, truncation: Float? = nil, classIndex: Int? = nil
    ) throws {
        let config = loaded.config
        let labels: [Int]? = config.classCount > 0 ? [classIndex ?? 0] : nil
        let (network, blocks): (String, [any Layer])
        switch subject {
        case .discriminator:
            guard let discriminator = loaded.discriminator else {
                throw ConfigurationError.invalidArgument(
                    .image, "\(Setting.image): the checkpoint holds no discriminator")
            }
            (network, blocks) = ("D", discriminator.blocks)
        case .generator: (network, blocks) = ("G", loaded.generator.blocks)
        }
        Self.setRecording(true, blocks)
        defer { Self.setRecording(false, blocks) }  // and so drop the maps the layers keep
        switch subject {
        case .discriminator(let picture):
            _ = noGrad { loaded.discriminator!(picture.reshaped(to: [1] + picture.shape), labels: labels) }
            image = picture
        case .generator(let seed):
            let z = LatentCodes.z(seed: seed, size: config.latentSize, truncation: truncation)
            image = loaded.images([z], labels: labels).reshaped(  // (C, R, R)
                to: [config.imageChannels, config.resolution, config.resolution])
        }
        layers = try blocks.enumerated().compactMap { index, block in
            guard let attention = block as? any SelfAttentionLayer else { return nil }
            guard let weights = attention.lastAttention else {
                throw ConfigurationError.invalidArgument(.layer, "the attention layer recorded no maps")
            }
            // (1, queries, keys)
            let (queryCount, keyCount) = (weights.shape[1], weights.shape[2])
            return RecordedAttention(
                name: "\(network).blocks.\(index)", gamma: attention.gamma.value.scalar,
                querySide: Int(Double(queryCount).squareRoot()), keySide: Int(Double(keyCount).squareRoot()),
                weights: weights.scalars)
        }
    }

    static func setRecording(_ on: Bool, _ blocks: [any Layer]) {
        for case let attention as any SelfAttentionLayer in blocks { attention.recordsAttention = on }
    }
}

/// What an attention layer attended to: the image, the queries and one key-grid map per query.
public struct AttentionInspection {
    /// The image looked at, (C, R, R) in [−1, 1].
    public let image: Tensor
    public let queries: [(x: Int, y: Int)]
    /// For each query, its attention weights over the layer's key grid (row-major).
    public let maps: [[Float]]

    /// Three queries on the diagonal, at a quarter, a half and three quarters of the side.
    public static func defaultQueries(resolution: Int) -> [(x: Int, y: Int)] {
        [(resolution / 4, resolution / 4), (resolution / 2, resolution / 2), (3 * resolution / 4, 3 * resolution / 4)]
    }

    /// Records G or D once and keeps `layer`'s maps (layers counted from 0 in that network).
    public init(
        _ loaded: LoadedGenerator, subject: AttentionSubject, layer: Int, queries: [(x: Int, y: Int)],
        classIndex: Int? = nil
    ) throws {
        let recording = try AttentionRecording(loaded, subject: subject, classIndex: classIndex)
        guard layer >= 0, layer < recording.layers.count else {
            let network = if case .generator = subject { "G" } else { "D" }
            throw ConfigurationError.invalidArgument(
                .layer, "\(Setting.layer) \(layer): \(network) has \(recording.layers.count) attention layers")
        }
        image = recording.image
        self.queries = queries
        maps = try recording.layers[layer].maps(queries: queries, resolution: loaded.config.resolution)
    }

    /// The image with the query points and each map as a heatmap beside it.
    public var picture: PixelImage {
        AttentionPicture.compose(image: AttentionPicture.rgb(image), queries: queries, maps: maps)
    }

    /// The side of the key grid the maps cover.
    public var keyGridSide: Int { Int(Double(maps.first?.count ?? 0).squareRoot()) }

    /// A real image as a model sees it: decoded, converted to `channels`, centre-cropped and resized
    /// to `resolution`, in [−1, 1], shaped (C, R, R).
    public static func modelInput(contentsOf path: String, resolution: Int, channels: Int) throws -> Tensor {
        try InputKind.require(path, setting: .image, needs: "a JPEG, PNG, PGM or PPM image") { kind in
            if case .image = kind { return true }
            return kind == .other  // the decoder says what is wrong with it
        }
        return modelInput(try ImageCodec.decodeFile(path).image, resolution: resolution, channels: channels)
    }

    /// A decoded image as a model sees it (see `modelInput(contentsOf:resolution:channels:)`).
    public static func modelInput(_ picture: PixelImage, resolution: Int, channels: Int) -> Tensor {
        var image = picture.converted(toChannels: channels)
        let box = CropPolicy.center.box(width: image.width, height: image.height)
        image = Resampling.resize(
            image.cropped(left: box.left, top: box.top, width: box.width, height: box.height), width: resolution,
            height: resolution)
        var values = [Float](repeating: 0, count: channels * resolution * resolution)
        for y in 0..<resolution {
            for x in 0..<resolution {
                for c in 0..<channels {
                    values[(c * resolution + y) * resolution + x] = Float(image[x: x, y: y, channel: c]) / 127.5 - 1
                }
            }
        }
        return Tensor(shape: [channels, resolution, resolution], scalars: values)
    }
}
