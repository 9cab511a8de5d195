import Autodiff
import Datasets
import Foundation
import GAN
import Hummingbird

/// What the generator playground draws with: a checkpoint's G or G-EMA, the truncation of z and,
/// for class-conditional models, the class. Images come from the same code as `sagan generate`.
struct PlaygroundModel {
    let loaded: LoadedGenerator
    /// Identifies the file and network, for the keys of cached recordings.
    let key: String
    let truncation: Float?
    let classIndex: Int?

    var latentSize: Int { loaded.config.latentSize }

    func z(_ seed: Int) -> [Float] { LatentCodes.z(seed: seed, size: latentSize, truncation: truncation) }

    /// The image of one seed, as a PNG of the model's resolution.
    func image(seed: Int) throws -> Data {
        try ImageCodec.encodePNG(loaded.pictures([z(seed)], classIndex: classIndex)[0])
    }

    /// `count` images from seed `from` to seed `to` along the great circle between their z (slerp), in a row.
    func interpolation(from: Int, to: Int, count: Int) throws -> Data {
        let codes = LatentCodes.interpolation(z(from), z(to), count: count)
        return try ImageCodec.encodePNG(loaded.grid(codes, columns: count, classIndex: classIndex))
    }

    /// The images of `seeds` in a grid of `columns` columns.
    func grid(seeds: [Int], columns: Int) throws -> Data {
        try ImageCodec.encodePNG(loaded.grid(seeds.map(z), columns: columns, classIndex: classIndex))
    }

    /// What to record: G drawing `seed`, D judging that image (`network` "D"), or D judging an
    /// upload; and a key naming it.
    func subject(network: String, seed: Int, upload: String?, models: StudioModels) throws -> (AttentionSubject, String)
    {
        if let upload {
            guard let image = models.upload(upload) else {
                throw HTTPError(.gone, message: "upload \(upload) is no longer kept: upload the image again")
            }
            return (.discriminator(image: image), "upload \(upload)")
        }
        guard network == "D" else { return (.generator(seed: seed), "G seed \(seed)") }
        let image = loaded.images([z(seed)], labels: classIndex.map { [$0] })  // (1, C, R, R)
        return (.discriminator(image: image.reshaped(to: Array(image.shape.dropFirst()))), "D seed \(seed)")
    }

    /// Every attention layer's map for the query pixel (x, y), recorded once per subject and kept.
    func attention(_ subject: AttentionSubject, subjectKey: String, x: Int, y: Int, models: StudioModels) throws
        -> AttentionAnswer
    {
        let resolution = loaded.config.resolution
        guard (0..<resolution).contains(x), (0..<resolution).contains(y) else {
            throw HTTPError(.badRequest, message: "x, y: \(x),\(y) is outside the \(resolution)x\(resolution) image")
        }
        let recording = try models.recording("\(key)|\(subjectKey)|\(truncation ?? 0)|\(classIndex ?? -1)") {
            try AttentionRecording(loaded, subject: subject, truncation: truncation, classIndex: classIndex)
        }
        return AttentionAnswer(
            resolution: resolution, x: x, y: y,
            layers: try recording.layers.map { layer in
                AttentionAnswer.Layer(
                    name: layer.name, gamma: layer.gamma, querySide: layer.querySide, keySide: layer.keySide,
                    map: try layer.maps(queries: [(x: x, y: y)], resolution: resolution)[0])
            })
    }
}

/// The attention maps of one query pixel, one per layer, as the page receives them.
struct AttentionAnswer: Codable, Sendable {
    struct Layer: Codable, Sendable {
        let name: String
        let gamma: Float
        let querySide: Int
        let keySide: Int
        /// keySide × keySide weights, row-major, summing to 1.
        let map: [Float]
    }
    let resolution: Int
    let x: Int
    let y: Int
    let layers: [Layer]
}

/// An uploaded image as D sees it, and the id later requests name it by.
struct UploadAnswer: Codable, Sendable {
    let id: String
    /// The cropped and resized image D judges, as a PNG in base64.
    let png: String
    let width: Int
    let height: Int
}
