import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import GAN
import HTTPTypes
import Hummingbird
import NIOCore

/// The JSON and image API the page calls. Runs are named by `run` (their path under --runs) and
/// checkpoints by `checkpoint` (a file name in the run's checkpoints/); anything that does not
/// resolve inside --runs is a 404.
struct StudioAPI: Sendable {
    let catalog: RunCatalog
    let compute: ComputeQueue
    let models: StudioModels
    let uploadLimit: Int

    init(options: StudioOptions) {
        catalog = RunCatalog(root: options.runs)
        compute = ComputeQueue(engine: options.engine)
        models = StudioModels(memoryBudget: options.modelMemory)
        uploadLimit = options.uploadLimit
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/api/runs") { _, _ in try json(catalog.runIDs().compactMap(catalog.summary)) }
        router.get("/api/run") { request, _ in
            let id = try runID(request)
            guard let summary = catalog.summary(of: id), let pictures = catalog.pictures(of: id),
                let checkpoints = catalog.checkpoints(of: id)
            else { throw notFound("run \(id)") }
            return try json(RunDetails(summary: summary, pictures: pictures, checkpoints: checkpoints))
        }
        router.get("/api/evaluation-metrics") { _, _ in
            try json(Metric.all.map { EvaluationMetricChart($0.definition) })
        }
        router.get("/api/metrics") { request, _ in
            let folder = try runFolder(request)
            let log = LiveUpdates.read(catalog.file("metrics.jsonl", of: folder), after: 0).bytes
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(data: LiveUpdates.metricsJSON(log, from: 0).json)))
        }
        router.get("/api/events") { request, _ in
            let folder = try runFolder(request)
            let parameters = try Parameters(request)
            let from = try parameters.lastEventID(request) ?? parameters.optionalInt("from", in: 0...Int.max)
            return LiveUpdates(run: try runID(request), folder: folder, catalog: catalog).response(resumingAt: from)
        }
        router.get("/api/file") { request, _ in
            let folder = try runFolder(request)
            let path = try Parameters(request).string("path")
            guard let file = try? SafePath.resolve(path, under: folder), PathKind(file.path) == .regularFile else {
                throw notFound("file \(path)")
            }
            let data = try Data(contentsOf: file, options: .alwaysMapped)
            return Response(
                status: .ok, headers: [.contentType: Self.contentType(file.pathExtension), .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(data: data)))
        }
        router.get("/api/generate") { request, _ in
            let parameters = try Parameters(request)
            let seed = try parameters.int("seed", in: 0...Int(Int32.max))
            return png(try await playground(request) { try $0.image(seed: seed) })
        }
        router.get("/api/interpolate") { request, _ in
            let parameters = try Parameters(request)
            let (from, to) = (
                try parameters.int("from", in: 0...Int(Int32.max)), try parameters.int("to", in: 0...Int(Int32.max))
            )
            let count = try parameters.int("count", in: 2...16, default: 8)
            return png(try await playground(request) { try $0.interpolation(from: from, to: to, count: count) })
        }
        router.get("/api/grid") { request, _ in
            let parameters = try Parameters(request)
            let first = try parameters.int("seed", in: 0...(Int(Int32.max) - 64), default: 0)
            let count = try parameters.int("count", in: 1...64, default: 16)
            let columns = Int(Double(count).squareRoot().rounded(.up))
            return png(
                try await playground(request) { try $0.grid(seeds: Array(first..<(first + count)), columns: columns) })
        }
        router.get("/api/attention") { request, _ in
            let parameters = try Parameters(request)
            let (x, y) = (try parameters.int("x", in: 0...4095), try parameters.int("y", in: 0...4095))
            let network = try parameters.string("net", default: "G")
            let upload = parameters.optionalString("upload")
            let seed = upload == nil ? try parameters.int("seed", in: 0...Int(Int32.max)) : 0
            guard ["G", "D"].contains(network) else {
                throw HTTPError(.badRequest, message: "net: \"\(network)\" is not G or D")
            }
            let models = models
            let answer = try await playground(request) { model in
                let (subject, subjectKey) = try model.subject(
                    network: network, seed: seed, upload: upload, models: models)
                return try model.attention(subject, subjectKey: subjectKey, x: x, y: y, models: models)
            }
            return try json(answer)
        }
        router.post("/api/upload") { request, context in
            var request = request
            let checkpoint = try checkpointFile(request)
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: uploadLimit)
            } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                throw HTTPError(
                    .contentTooLarge, message: "the image is over the upload limit of \(uploadLimit >> 20) MiB")
            }
            let bytes = Data(buffer: body)
            let models = models
            let answer = try await compute.run {
                let loaded = try models.generator(checkpoint, ema: false)
                let decoded = try ImageCodec.decode(bytes, path: "the uploaded image").image
                let image = AttentionInspection.modelInput(
                    decoded, resolution: loaded.config.resolution, channels: loaded.config.imageChannels)
                var digest = SHA256()
                digest.update(bytes)
                let id = digest.finalize()
                models.keepUpload(image, id: id)
                let picture = AttentionPicture.rgb(image)
                return UploadAnswer(
                    id: id, png: try ImageCodec.encodePNG(picture).base64EncodedString(), width: picture.width,
                    height: picture.height)
            }
            return try json(answer)
        }
    }

    /// Loads the request's checkpoint (cached) and runs `body` with it on the compute queue.
    func playground<R: Sendable>(_ request: Request, _ body: @escaping @Sendable (PlaygroundModel) throws -> R)
        async throws -> R
    {
        let checkpoint = try checkpointFile(request)
        let parameters = try Parameters(request)
        let ema = try parameters.bool("ema")
        let truncation = try parameters.optionalFloat("truncation", in: 0.05...10)
        let classIndex = try parameters.optionalInt("class", in: 0...100_000)
        let models = models
        return try await compute.run {
            let loaded = try models.generator(checkpoint, ema: ema)
            try loaded.checkClass(classIndex)
            return try body(
                PlaygroundModel(
                    loaded: loaded, key: StudioModels.key(checkpoint, ema: ema), truncation: truncation,
                    classIndex: classIndex))
        }
    }

    func runID(_ request: Request) throws -> String { try Parameters(request).string("run") }

    func runFolder(_ request: Request) throws -> URL {
        let id = try runID(request)
        guard let folder = catalog.folder(of: id) else { throw notFound("run \(id)") }
        return folder
    }

    func checkpointFile(_ request: Request) throws -> URL {
        let folder = try runFolder(request)
        let name = try Parameters(request).string("checkpoint")
        guard !name.contains("/"),
            let file = try? SafePath.resolve("checkpoints/" + name, under: folder), PathKind(file.path) == .regularFile
        else { throw notFound("checkpoint \(name)") }
        return file
    }

    static func contentType(_ pathExtension: String) -> String {
        switch pathExtension.lowercased() {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "json": return "application/json"
        case "jsonl", "txt", "log": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }
}

/// A run's summary, picture steps and checkpoints, for its page.
/// A chart of an evaluation metric: its title, the JSON key it draws, and which way is better.
struct EvaluationMetricChart: Codable, Sendable {
    let title: String
    let key: String
    let lowerIsBetter: Bool

    init(_ metric: any MetricDefinition) {
        (title, key, lowerIsBetter) = (metric.title, metric.headlineKey, metric.lowerIsBetter)
    }
}

struct RunDetails: Codable, Sendable {
    let summary: RunSummary
    let pictures: RunPictures
    let checkpoints: [CheckpointEntry]
}

func notFound(_ what: String) -> HTTPError { HTTPError(.notFound, message: "\(what): not found") }

func json(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return Response(
        status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
        body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
}

func png(_ data: Data) -> Response {
    Response(
        status: .ok, headers: [.contentType: "image/png", .cacheControl: "no-store"],
        body: .init(byteBuffer: ByteBuffer(data: data)))
}

/// A request's query parameters, each refused with a 400 that names it when missing or malformed.
struct Parameters {
    let values: [String: String]

    init(_ request: Request) throws {
        var values: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { values[String(key)] = String(value) }
        self.values = values
    }

    /// The `Last-Event-ID` header a reconnecting browser sends: the byte offset of the log it had
    /// read (our event ids), nil when absent; anything else is a 400 naming the header.
    func lastEventID(_ request: Request) throws -> Int? {
        guard let text = request.headers[HTTPField.Name("Last-Event-ID")!] else { return nil }
        guard let offset = Int(text), offset >= 0 else {
            throw HTTPError(.badRequest, message: "Last-Event-ID: \"\(text.prefix(40))\" is not a byte offset")
        }
        return offset
    }

    func optionalString(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }

    func string(_ name: String, default fallback: String? = nil) throws -> String {
        guard let value = optionalString(name) ?? fallback else {
            throw HTTPError(.badRequest, message: "\(name): missing")
        }
        return value
    }

    /// The parameter as a number in `range` (`what` names the kind in the message), nil when absent.
    func optionalNumber<Number: LosslessStringConvertible & Comparable>(
        _ name: String, in range: ClosedRange<Number>, what: String
    ) throws -> Number? {
        guard let text = optionalString(name) else { return nil }
        guard let value = Number(text), range.contains(value) else {
            throw HTTPError(
                .badRequest,
                message: "\(name): \"\(text)\" is not \(what) from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func optionalInt(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        try optionalNumber(name, in: range, what: "an integer")
    }

    func int(_ name: String, in range: ClosedRange<Int>, default fallback: Int? = nil) throws -> Int {
        guard let value = try optionalInt(name, in: range) ?? fallback else {
            throw HTTPError(.badRequest, message: "\(name): missing")
        }
        return value
    }

    func optionalFloat(_ name: String, in range: ClosedRange<Float>) throws -> Float? {
        try optionalNumber(name, in: range, what: "a number")
    }

    func bool(_ name: String) throws -> Bool {
        switch optionalString(name) {
        case nil, "0", "false": return false
        case "1", "true": return true
        case let text?: throw HTTPError(.badRequest, message: "\(name): \"\(text)\" is not 0 or 1")
        }
    }
}
