import Autodiff
import Datasets
import Foundation
import NeuralNet

/// Whose attention to look at: G's while it generates, or D's while it judges an image.
public enum AttentionSubject {
    /// G's layer while it draws the image of `seed`.
    case generator(seed: Int)
    /// D's layer on an image (C, R, R) in [−1, 1].
    case discriminator(image: Tensor)
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

    /// Runs G or D once with `layer` (counted from 0 in that network) recording its attention.
    /// `classIndex` conditions class-conditional models (default class 0).
    public init(
        _ loaded: LoadedGenerator, subject: AttentionSubject, layer: Int, queries: [(x: Int, y: Int)],
        classIndex: Int? = nil
    ) throws {
        let config = loaded.config
        let labels: [Int]? = config.classCount > 0 ? [classIndex ?? 0] : nil
        let attention: any SelfAttentionLayer
        switch subject {
        case .discriminator(let picture):
            guard let discriminator = loaded.discriminator else {
                throw ConfigurationError.invalidArgument("--image", "--image: the checkpoint holds no discriminator")
            }
            guard layer >= 0, layer < discriminator.attentionLayers.count else {
                throw ConfigurationError.invalidArgument(
                    "--layer", "--layer \(layer): D has \(discriminator.attentionLayers.count) attention layers")
            }
            attention = discriminator.attentionLayers[layer]
            attention.recordsAttention = true
            _ = noGrad { discriminator(picture.reshaped(to: [1] + picture.shape), labels: labels) }
            image = picture
        case .generator(let seed):
            guard layer >= 0, layer < loaded.generator.attentionLayers.count else {
                throw ConfigurationError.invalidArgument(
                    "--layer", "--layer \(layer): G has \(loaded.generator.attentionLayers.count) attention layers")
            }
            attention = loaded.generator.attentionLayers[layer]
            attention.recordsAttention = true
            let z = LatentCodes.z(seed: seed, size: config.latentSize)
            image = loaded.images([z], labels: labels).reshaped(  // (C, R, R)
                to: [config.imageChannels, config.resolution, config.resolution])
        }
        self.queries = queries
        maps = try AttentionPicture.maps(attention, queries: queries, resolution: config.resolution)
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
        var image = try ImageCodec.decodeFile(path).image.converted(toChannels: channels)
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
