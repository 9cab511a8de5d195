import Datasets
import FileFormats
import Foundation
import GAN
import Studio
import TestSupport
import Testing

/// A studio server started in this process on a free port, over a runs folder holding one small
/// trained run ("blobs": 4 steps, checkpoints at 2 and 4, with G-EMA).
final class RunningStudio: Sendable {
    let root: URL
    let port: Int
    let task: Task<Void, any Error>
    var client: HTTPClient { HTTPClient(port: port) }
    var checkpoint: URL { root.appendingPathComponent("blobs/checkpoints/step-000004.safetensors") }

    init(root: URL, port: Int, task: Task<Void, any Error>) {
        (self.root, self.port, self.task) = (root, port, task)
    }

    static func start(
        token: String? = nil, uploadLimit: Int = 1 << 20, idleTimeout: Duration = .seconds(60)
    ) async throws -> RunningStudio {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("studio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try trainRun(in: root)
        var options = StudioOptions(runs: root)
        (options.port, options.token, options.uploadLimit, options.idleTimeout) = (0, token, uploadLimit, idleTimeout)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = try StudioServer.application(options) { continuation.yield($0) }
        let task = Task { try await application.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HTTPClient.Failure(description: "no port") }
        return RunningStudio(root: root, port: port, task: task)
    }

    /// A 4-step tiny32 run named `name`; `settings` is a config file's JSON, `conditional` trains on
    /// the blobs' two classes.
    static func trainRun(in root: URL, name: String = "blobs", settings: String? = nil, conditional: Bool = false)
        throws
    {
        let data = root.appendingPathComponent("data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let dataset = try makeBlobPack(data, count: 16)
        var options = TrainingRunOptions()
        options.folder = root.appendingPathComponent(name)
        options.conditional = conditional
        if let settings {
            options.configFile = data.appendingPathComponent("settings.json")
            try Data(settings.utf8).write(to: options.configFile!)
        }
        options.preset = .tiny32
        options.overrides.steps = 4
        options.overrides.batchSize = 4
        options.overrides.sampleEvery = 2
        options.overrides.checkpointEvery = 2
        options.overrides.logEvery = 1
        options.overrides.ema = true
        _ = try TrainingRun(options, dataset: dataset).train(commandLine: ["sagan", "train", "--steps", "4"])
        try? FileManager.default.removeItem(at: data)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
        try? FileManager.default.removeItem(at: root)
    }
}

@Suite("sagan studio's HTTP API", .serialized, .tags(.slow), .skippedInFastRuns)
struct StudioServerTests {
    @Test func listsRunsAndServesTheirFiles() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let client = studio.client
        let page = try await client.get("/")
        #expect(page.status == 200 && page.text.contains("<title>sagan studio</title>"))
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        // Every script the page names is served, as JavaScript.
        let scripts = page.text.matches(of: /<script src="([^"]+)"/).map { String($0.1) }
        #expect(scripts.count == 7 && scripts.last == "/studio.js", "\(scripts)")
        for script in scripts {
            let file = try await client.get(script)
            #expect(
                file.status == 200 && file.headers["content-type"]?.hasPrefix("text/javascript") == true, "\(script)")
        }
        #expect(try await client.get("/charts.js").text.contains("function drawChart"))

        let runs = try #require(try await client.get("/api/runs").json().array)
        #expect(runs.count == 1 && runs[0]["id"]?.string == "blobs" && runs[0]["step"]?.int == 4)
        #expect(runs[0]["preset"]?.string == "tiny32" && runs[0]["resolution"]?.int == 32)

        let details = try await client.get("/api/run?run=blobs").json()
        let checkpoints = try #require(details["checkpoints"]?.array)
        #expect(checkpoints.map { $0["file"]?.string } == ["step-000004.safetensors", "step-000002.safetensors"])
        #expect(checkpoints.allSatisfy { $0["hasEMA"]?.bool == true && $0["hasDiscriminator"]?.bool == true })
        let pictures = try #require(details["pictures"])
        #expect(pictures["samples"] == [2, 4] && pictures["attention"] == [2, 4])

        let metrics = try await client.get("/api/metrics?run=blobs").json()
        let log = try Data(contentsOf: studio.root.appendingPathComponent("blobs/metrics.jsonl"))
        #expect(metrics["rows"]?.array?.count == 4 && metrics["length"]?.int == log.count)

        let sample = try await client.get("/api/file?run=blobs&path=samples/step-000002.png")
        #expect(sample.status == 200 && sample.headers["content-type"] == "image/png")
        #expect(
            sample.body == (try Data(contentsOf: studio.root.appendingPathComponent("blobs/samples/step-000002.png"))))
    }

    /// The playground's images are `sagan generate`'s: the same seeds give the same PNG bytes.
    @Test func imagesAreTheGeneratorsOwn() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let base = "run=blobs&checkpoint=step-000004.safetensors"
        for ema in [false, true] {
            let loaded = try LoadedGenerator(contentsOf: studio.checkpoint, ema: ema)
            let size = loaded.config.latentSize
            let flag = ema ? "1" : "0"
            let image = try await studio.client.get("/api/generate?\(base)&ema=\(flag)&seed=7")
            #expect(image.status == 200 && image.headers["content-type"] == "image/png")
            let expected = try ImageCodec.encodePNG(loaded.pictures([LatentCodes.z(seed: 7, size: size)])[0])
            #expect(image.body == expected)

            let truncated = try await studio.client.get("/api/generate?\(base)&ema=\(flag)&seed=7&truncation=0.5")
            let z = LatentCodes.z(seed: 7, size: size, truncation: 0.5)
            #expect(truncated.body == (try ImageCodec.encodePNG(loaded.pictures([z])[0])))

            let grid = try await studio.client.get("/api/grid?\(base)&ema=\(flag)&seed=3&count=16")
            let codes = (3..<19).map { LatentCodes.z(seed: $0, size: size) }
            #expect(grid.body == (try ImageCodec.encodePNG(loaded.grid(codes, columns: 4))))

            let strip = try await studio.client.get("/api/interpolate?\(base)&ema=\(flag)&from=1&to=2&count=5")
            let (a, b) = (LatentCodes.z(seed: 1, size: size), LatentCodes.z(seed: 2, size: size))
            let path = (0..<5).map { LatentCodes.slerp(a, b, Float($0) / 4) }
            #expect(strip.body == (try ImageCodec.encodePNG(loaded.grid(path, columns: 5))))
        }
    }

    /// The attention explorer's maps are the numbers `sagan inspect attention` draws.
    @Test func attentionMapsAreInspectAttentionsNumbers() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let loaded = try LoadedGenerator(contentsOf: studio.checkpoint, ema: false)
        let base = "/api/attention?run=blobs&checkpoint=step-000004.safetensors&seed=5"
        var previous: [Float]?
        for (x, y) in [(3, 4), (25, 20)] {
            let answer = try await studio.client.get("\(base)&x=\(x)&y=\(y)").json()
            let layers = try #require(answer["layers"]?.array)
            #expect(layers.count == loaded.generator.attentionLayers.count)
            let map = try #require(layers[0]["map"]?.array?.compactMap { $0.float })
            let inspection = try AttentionInspection(
                loaded, subject: .generator(seed: 5), layer: 0, queries: [(x: x, y: y)])
            #expect(map == inspection.maps[0])
            #expect(layers[0]["name"]?.string == "G.blocks.2" && layers[0]["keySide"]?.int == 16)
            #expect(map != previous)
            previous = map
        }
        // D's attention while it judges the generated image of the seed.
        let answer = try await studio.client.get("\(base)&net=D&x=10&y=10").json()
        let map = try #require(answer["layers"]?.array?.first?["map"]?.array?.compactMap { $0.float })
        let image = loaded.images([LatentCodes.z(seed: 5, size: loaded.config.latentSize)])  // (1, 1, 32, 32)
        let inspection = try AttentionInspection(
            loaded, subject: .discriminator(image: image.reshaped(to: [1, 32, 32])), layer: 0,
            queries: [(x: 10, y: 10)])
        #expect(map == inspection.maps[0])
    }

    /// BigGAN's attention variant: maps on the pooled key grid, as `sagan inspect attention` gives them.
    @Test func bigGANMapsAreOnThePooledGrid() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        try RunningStudio.trainRun(
            in: studio.root, name: "pooled", settings: #"{"model": {"attentionVariant": "biggan"}}"#)
        let checkpoint = studio.root.appendingPathComponent("pooled/checkpoints/step-000004.safetensors")
        let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: false)
        let target = "/api/attention?run=pooled&checkpoint=step-000004.safetensors&seed=2&x=17&y=6"
        let answer = try await studio.client.get(target).json()
        let layer = try #require(answer["layers"]?.array?.first)
        let map = try #require(layer["map"]?.array?.compactMap { $0.float })
        let inspection = try AttentionInspection(
            loaded, subject: .generator(seed: 2), layer: 0, queries: [(x: 17, y: 6)])
        #expect(layer["keySide"]?.int == 8 && layer["querySide"]?.int == 16 && map == inspection.maps[0])
    }

    /// A class-conditional run: the class picks the images, and a class is required.
    @Test func classesConditionTheImages() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        try RunningStudio.trainRun(in: studio.root, name: "classes", conditional: true)
        let checkpoint = studio.root.appendingPathComponent("classes/checkpoints/step-000004.safetensors")
        let loaded = try LoadedGenerator(contentsOf: checkpoint, ema: false)
        let summary = try await studio.client.get("/api/run?run=classes").json()
        #expect(summary["summary"]?["classCount"]?.int == 2)
        let base = "/api/generate?run=classes&checkpoint=step-000004.safetensors&seed=4"
        let z = [LatentCodes.z(seed: 4, size: loaded.config.latentSize)]
        for classIndex in 0..<2 {
            let image = try await studio.client.get("\(base)&class=\(classIndex)")
            #expect(image.body == (try ImageCodec.encodePNG(loaded.pictures(z, classIndex: classIndex)[0])))
        }
        let missing = try await studio.client.get(base)
        #expect(missing.status == 422 && missing.message?.contains("class-conditional") == true)
    }

    /// An uploaded image is decoded by our codecs and judged by D, as `--image` does; bad ones get 4xx.
    @Test func uploadsAreCheckedAndJudged() async throws {
        let studio = try await RunningStudio.start(uploadLimit: 64 << 10)
        defer { Task { await studio.stop() } }
        let loaded = try LoadedGenerator(contentsOf: studio.checkpoint, ema: false)
        var pixels = [UInt8](repeating: 0, count: 48 * 40 * 3)
        for index in pixels.indices { pixels[index] = UInt8((index * 7) % 251) }
        let png = try ImageCodec.encodePNG(PixelImage(width: 48, height: 40, channels: 3, pixels: pixels))
        let target = "/api/upload?run=blobs&checkpoint=step-000004.safetensors"
        let reply = try await studio.client.request("POST", target, body: png)
        let upload = try reply.json()
        let id = try #require(upload["id"]?.string)
        #expect(upload["width"]?.int == 32 && upload["height"]?.int == 32)

        let base = "/api/attention?run=blobs&checkpoint=step-000004.safetensors&upload=\(id)&x=9&y=14"
        let answer = try await studio.client.get(base).json()
        let map = try #require(answer["layers"]?.array?.first?["map"]?.array?.compactMap { $0.float })
        let file = studio.root.appendingPathComponent("upload.png")
        try png.write(to: file)
        let input = try AttentionInspection.modelInput(contentsOf: file.path, resolution: 32, channels: 1)
        let inspection = try AttentionInspection(
            loaded, subject: .discriminator(image: input), layer: 0, queries: [(x: 9, y: 14)])
        #expect(map == inspection.maps[0])

        let text = try await studio.client.request("POST", target, body: Data("not an image".utf8))
        #expect(text.status == 422 && text.message?.contains("the uploaded image: not a JPEG, PNG") == true)
        let large = try await studio.client.request("POST", target, body: Data(count: 65 << 10))
        #expect(large.status == 413 && large.message?.contains("upload limit") == true)
        let gone = try await studio.client.get(base.replacingOccurrences(of: id, with: "0123"))
        #expect(gone.status == 410)
    }

    /// Only files under --runs: traversal, absolute paths and symlinks that leave the folder get 404.
    @Test func nothingOutsideTheRunsFolderIsServed() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        try Data("top-secret-content".utf8).write(to: outside.appendingPathComponent("secret.txt"))
        try Data("{}".utf8).write(to: outside.appendingPathComponent("run.json"))
        let samples = studio.root.appendingPathComponent("blobs/samples")
        try FileManager.default.createSymbolicLink(
            at: samples.appendingPathComponent("escape.txt"),
            withDestinationURL: outside.appendingPathComponent("secret.txt"))
        try FileManager.default.createSymbolicLink(
            at: studio.root.appendingPathComponent("linked"), withDestinationURL: outside)
        let name = outside.lastPathComponent
        for target in [
            "/api/file?run=blobs&path=../../\(name)/secret.txt", "/api/file?run=blobs&path=%2e%2e/run.json",
            "/api/file?run=blobs&path=\(outside.path)/secret.txt", "/api/file?run=blobs&path=samples/escape.txt",
            "/api/file?run=../\(name)&path=secret.txt", "/api/file?run=linked&path=secret.txt",
            "/api/file?run=blobs&path=samples", "/api/run?run=linked", "/api/metrics?run=%2Ftmp",
            "/api/generate?run=blobs&checkpoint=../run.json&seed=1", "/../../etc/passwd", "/api/file?run=blobs",
        ] {
            let reply = try await studio.client.get(target)
            #expect(reply.status == 404 || reply.status == 400, "\(target): \(reply.status)")
            #expect(!reply.text.contains("top-secret-content"), "\(target)")
        }
        let runs = try await studio.client.get("/api/runs")
        #expect(!runs.text.contains("linked"))
    }

    @Test func aTokenGuardsEveryRequest() async throws {
        var exposed = StudioOptions(runs: FileManager.default.temporaryDirectory)
        exposed.host = "0.0.0.0"
        #expect(throws: StudioError.self) { try exposed.validate() }
        exposed.token = "short"
        #expect(throws: StudioError.self) { try exposed.validate() }
        exposed.token = "a-long-enough-secret"
        try exposed.validate()

        let token = "studio-test-token-1234"
        let studio = try await RunningStudio.start(token: token)
        defer { Task { await studio.stop() } }
        let client = studio.client
        #expect(try await client.get("/api/runs").status == 401)
        #expect(try await client.get("/").status == 401)
        #expect(try await client.get("/api/runs?token=wrong-token-123456").status == 401)
        let opened = try await client.get("/?token=\(token)")
        #expect(opened.status == 200 && opened.headers["set-cookie"]?.hasPrefix("sagan_token=\(token)") == true)
        #expect(try await client.get("/api/runs", headers: ["Cookie": "a=b; sagan_token=\(token)"]).status == 200)
        #expect(try await client.get("/api/runs", headers: ["Authorization": "Bearer \(token)"]).status == 200)
        // With a token, other Host names are fine: the token is the guard.
        #expect(try await client.get("/api/runs?token=\(token)", headers: ["Host": "studio.example"]).status == 200)
    }

    /// One header cannot end the server, a Host that only begins like localhost is refused, answers
    /// carry the page's security headers, other sites cannot post, and a silent client is let go.
    @Test func hostileRequestsAreRefused() async throws {
        let studio = try await RunningStudio.start(idleTimeout: .seconds(1))
        defer { Task { await studio.stop() } }
        let client = studio.client
        for id in ["-1", "x", "99999999999999999999999", ""] {
            let reply = try await client.get("/api/events?run=blobs", headers: ["Last-Event-ID": id], timeout: 10)
            #expect(reply.status == 400 && reply.message?.contains("Last-Event-ID") == true, "\(id): \(reply.text)")
        }
        for host in ["localhost:evil.example", "localhost:", "127.0.0.1:80x", "[::1]evil", "[::1", "localhost:99999"] {
            #expect(try await client.get("/api/runs", headers: ["Host": host]).status == 403, "\(host)")
        }
        #expect(try await client.get("/api/runs", headers: ["Host": "LOCALHOST:7860"]).status == 200)
        #expect(try await client.get("/api/runs", headers: ["Host": "[::1]:7860"]).status == 200)
        for target in [
            "/api/runs", "/api/run?run=missing", "/api/generate?run=blobs&checkpoint=step-000004.safetensors",
        ] {
            let reply = try await client.get(target)
            #expect(reply.headers["x-content-type-options"] == "nosniff", "\(target)")
            #expect(reply.headers["content-security-policy"]?.contains("default-src 'self'") == true, "\(target)")
        }

        let png = try ImageCodec.encodePNG(PixelImage(width: 8, height: 8, channels: 1, pixels: Array(0..<64)))
        let upload = "/api/upload?run=blobs&checkpoint=step-000004.safetensors"
        for headers in [
            ["Origin": "http://evil.example", "Content-Type": "text/plain"], ["Sec-Fetch-Site": "cross-site"],
            ["Origin": "null"], ["Origin": "http://127.0.0.1:\(studio.port).evil.example"],
        ] {
            let reply = try await client.request("POST", upload, headers: headers, body: png)
            #expect(reply.status == 403 && reply.message?.contains("another site") == true, "\(headers)")
        }
        let own = ["Origin": "http://127.0.0.1:\(studio.port)", "Sec-Fetch-Site": "same-origin"]
        #expect(try await client.request("POST", upload, headers: own, body: png).status == 200)
        #expect(
            try await client.request("POST", upload, body: png).status == 200, "a client without a browser's headers")

        // A client that connects and sends nothing is disconnected after the idle timeout.
        let began = ContinuousClock.now
        let silent = try await client.exchange(Data(), timeout: 20)
        #expect(silent.isEmpty && ContinuousClock.now - began < .seconds(10), "\(ContinuousClock.now - began)")
        #expect(try await client.get("/api/runs").status == 200, "the server still answers")
    }

    /// Links out of --runs are not followed and special files are not opened (a FIFO named like a
    /// log or a checkpoint would make every reader wait for a writer): the run's other files still
    /// answer, the special ones are 404 or left out.
    @Test func linksAndSpecialFilesInTheRunsFolder() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        try Data("{\"step\":987654321,\"Loss/D\":1.5}\n".utf8).write(
            to: outside.appendingPathComponent("metrics.jsonl"))
        try FileManager.default.copyItem(
            at: studio.checkpoint, to: outside.appendingPathComponent("secret.safetensors"))
        try Data(#"{"config": {"preset": "secret-preset"}}"#.utf8).write(to: outside.appendingPathComponent("run.json"))
        let (linked, special) = (studio.root.appendingPathComponent("r2"), studio.root.appendingPathComponent("r3"))
        for run in [linked, special] {
            try FileManager.default.createDirectory(
                at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        }
        for name in ["metrics.jsonl", "run.json"] {
            try FileManager.default.createSymbolicLink(
                at: linked.appendingPathComponent(name), withDestinationURL: outside.appendingPathComponent(name))
        }
        try FileManager.default.createSymbolicLink(
            at: linked.appendingPathComponent("checkpoints/step-000001.safetensors"),
            withDestinationURL: outside.appendingPathComponent("secret.safetensors"))
        for name in ["metrics.jsonl", "run.json", "checkpoints/step-000099.safetensors", "samples.png"] {
            #expect(mkfifo(special.appendingPathComponent(name).path, 0o600) == 0, "mkfifo \(name)")
        }

        let runs = try await studio.client.get("/api/runs", timeout: 10)
        #expect(
            runs.status == 200 && !runs.text.contains("987654321") && !runs.text.contains("secret-preset"),
            "\(runs.text)")
        for run in ["r2", "r3"] {
            let metrics = try await studio.client.get("/api/metrics?run=\(run)", timeout: 10)
            #expect(try metrics.status == 200 && metrics.json()["rows"] == [], "\(run): \(metrics.text)")
            let details = try await studio.client.get("/api/run?run=\(run)", timeout: 10)
            #expect(try details.status == 200 && details.json()["checkpoints"] == [], "\(run): \(details.text)")
            let events = try await studio.client.get("/api/events?run=\(run)", until: "retry", timeout: 10)
            #expect(events.status == 200 && !events.text.contains("987654321"), "\(run)")
        }
        for target in [
            "/api/file?run=r3&path=metrics.jsonl", "/api/file?run=r3&path=samples.png",
            "/api/file?run=r2&path=metrics.jsonl", "/api/generate?run=r3&checkpoint=step-000099.safetensors&seed=1",
            "/api/generate?run=r2&checkpoint=step-000001.safetensors&seed=1",
        ] {
            let reply = try await studio.client.get(target, timeout: 10)
            #expect(reply.status == 404, "\(target): \(reply.status)")
        }
    }

    /// Malformed requests get a 4xx with a message, and the server goes on answering.
    @Test func malformedRequestsGetMessages() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let client = studio.client
        let base = "/api/generate?run=blobs&checkpoint=step-000004.safetensors"
        let cases: [(String, Int, String)] = [
            ("\(base)", 400, "seed: missing"), ("\(base)&seed=x", 400, "seed: \"x\" is not an integer"),
            ("\(base)&seed=-1", 400, "seed"), ("\(base)&seed=1&truncation=0", 400, "truncation"),
            ("\(base)&seed=1&ema=maybe", 400, "ema"), ("\(base)&seed=1&class=3", 422, "not class-conditional"),
            ("/api/generate?run=blobs&checkpoint=nope.safetensors&seed=1", 404, "checkpoint nope.safetensors"),
            ("/api/attention?run=blobs&checkpoint=step-000004.safetensors&seed=1&x=40&y=1", 400, "outside the 32x32"),
            ("/api/attention?run=blobs&checkpoint=step-000004.safetensors&seed=1&x=1&y=1&net=Q", 400, "net"),
            ("/api/run?run=missing", 404, "run missing"), ("/api/run", 400, "run: missing"),
        ]
        for (target, status, message) in cases {
            let reply = try await client.get(target)
            #expect(reply.status == status, "\(target)")
            #expect(reply.message?.contains(message) == true, "\(target): \(reply.message ?? reply.text)")
        }
        #expect(try await client.get("/api/runs", headers: ["Host": "evil.example"]).status == 403)
        #expect(try await client.get("/nothing-here").status == 404)
        // A damaged checkpoint: 422 naming the problem, not a crash.
        let damaged = studio.root.appendingPathComponent("blobs/checkpoints/step-000009.safetensors")
        try Data("garbage".utf8).write(to: damaged)
        let broken = try await client.get("/api/generate?run=blobs&checkpoint=step-000009.safetensors&seed=1")
        #expect(broken.status == 422 && broken.message?.isEmpty == false)
        // Bytes that are not HTTP, then a normal request: the server is still there.
        _ = try? await client.exchange(Data("\u{1}\u{2}garbage\r\n\r\n".utf8))
        _ = try? await client.exchange(Data("GET /api/runs HTTP/1.1\r\nContent-Length: x\r\n\r\n".utf8))
        #expect(try await client.get("/api/runs").status == 200)
    }

    /// A run that is still training: new rows arrive as server-sent events.
    @Test func liveUpdatesCarryNewRows() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let log = studio.root.appendingPathComponent("blobs/metrics.jsonl")
        let length = try Data(contentsOf: log).count
        let request = "GET /api/events?run=blobs&from=\(length) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        async let stream = studio.client.exchange(Data(request.utf8), until: "\"step\":5")
        try await Task.sleep(for: .milliseconds(700))
        let handle = try FileHandle(forWritingTo: log)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"Loss/D\":1.5,\"step\":5}\n".utf8))
        try handle.close()
        let text = String(decoding: try await stream, as: UTF8.self)
        #expect(text.contains("content-type: text/event-stream") || text.contains("Content-Type: text/event-stream"))
        #expect(text.contains("event: metrics\nid: \(length + 24)\ndata: {\"from\":\(length)"))
        #expect(!text.contains("\"step\":4"))
        // A log shorter than where the page stopped (a resume cut it back): the whole log again.
        let cut = "GET /api/events?run=blobs&from=999999 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        let reset = String(
            decoding: try await studio.client.exchange(Data(cut.utf8), until: "step\":5}"), as: UTF8.self)
        #expect(reset.contains("event: reset\nid: \(length + 24)\ndata: {\"from\":0,"))
        #expect(reset.contains("\"step\":1}") && reset.contains("\"step\":5}"))
    }

    /// Requests beyond what the CPU can serve at once wait their turn; all are answered.
    @Test func concurrentRequestsQueue() async throws {
        let studio = try await RunningStudio.start()
        defer { Task { await studio.stop() } }
        let client = studio.client
        let replies = try await withThrowingTaskGroup(of: (Int, HTTPReply).self) { group in
            for seed in 0..<12 {
                group.addTask {
                    (
                        seed,
                        try await client.get("/api/generate?run=blobs&checkpoint=step-000004.safetensors&seed=\(seed)")
                    )
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(replies.count == 12 && replies.values.allSatisfy { $0.status == 200 })
        let alone = try await client.get("/api/generate?run=blobs&checkpoint=step-000004.safetensors&seed=3")
        #expect(replies[3]?.body == alone.body)
    }
}
