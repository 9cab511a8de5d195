import Autodiff
import Datasets
import Foundation
import Testing

@Suite("Batch loader")
struct LoaderTests {
    /// 10 labelled 4x4 RGB images whose first pixel encodes their index.
    func makePack(_ folder: URL) throws -> PackedDataset {
        let url = folder.appendingPathComponent("ten.safetensors")
        let writer = try PackedDatasetWriter(destination: url, height: 4, width: 4, channels: 3)
        for index in 0..<10 {
            var image = TestImages.noise(width: 4, height: 4, channels: 3, seed: UInt64(index))
            image.pixels[0] = UInt8(index * 20)
            try writer.append(image, label: index % 3)
        }
        try writer.finish(metadata: [:], labelNames: ["a", "b", "c"])
        return try PackedDataset(contentsOf: url)
    }

    /// The image indices of a batch, read back from the first pixel.
    func indices(_ batch: Batch) -> [Int] {
        let values = batch.images.scalars
        let stride = 3 * 4 * 4
        return (0..<batch.images.shape[0]).map { Int(((values[$0 * stride] + 1) * 127.5 / 20).rounded()) }
    }

    @Test func epochsArePermutationsDeterminedByTheSeed() throws {
        let folder = try TestImages.temporaryFolder("loader")
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makePack(folder)
        let loader = try BatchLoader(dataset: dataset, options: .init(batchSize: 5, seed: 3))
        let epoch0 = try indices(loader.next()) + indices(loader.next())
        let epoch1 = try indices(loader.next()) + indices(loader.next())
        #expect(epoch0.sorted() == Array(0..<10) && epoch1.sorted() == Array(0..<10))
        #expect(epoch0 != epoch1)
        #expect(epoch0 == BatchLoader.permutation(count: 10, seed: 3, epoch: 0))
        let again = try BatchLoader(dataset: dataset, options: .init(batchSize: 5, seed: 3))
        #expect(try indices(again.next()) == Array(epoch0.prefix(5)))
        let other = try BatchLoader(dataset: dataset, options: .init(batchSize: 5, seed: 4))
        #expect(try indices(other.next()) + indices(other.next()) != epoch0)
    }

    /// benchmarks/sagan_order.py (the PyTorch trainer's image order) draws the same permutations and
    /// the same batches as the loader: a 60,000-image epoch, a later epoch, and batches across epochs.
    @Test func thePythonOrderOfTheTrainerComparisonIsTheLoaders() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../benchmarks/sagan_order.py"
        ).standardizedFileURL
        func python(_ arguments: [String]) throws -> Data {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script.path] + arguments
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "sagan_order.py \(arguments) failed")
            return data
        }
        for (count, seed, epoch) in [(60_000, UInt64(1), 0), (1_000, 123_456_789, 5), (10, 3, 2)] {
            let printed = try JSONDecoder().decode(
                [Int].self, from: python(["--count", "\(count)", "--seed", "\(seed)", "--epoch", "\(epoch)"]))
            #expect(
                printed == BatchLoader.permutation(count: count, seed: seed, epoch: epoch),
                "count \(count), seed \(seed), epoch \(epoch)")
        }
        let folder = try TestImages.temporaryFolder("order")
        defer { try? FileManager.default.removeItem(at: folder) }
        let loader = try BatchLoader(dataset: try makePack(folder), options: .init(batchSize: 4, seed: 7))
        let drawn = try (0..<6).map { _ in try indices(loader.next()) }
        let printed = try JSONDecoder().decode(
            [[Int]].self, from: python(["--count", "10", "--seed", "7", "--batch", "4", "--batches", "6"]))
        #expect(printed == drawn, "batches across epochs (the last two images of each epoch are dropped)")
    }

    @Test func resumingFromACursorContinuesExactly() throws {
        let folder = try TestImages.temporaryFolder("resume")
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makePack(folder)
        let options = BatchLoader.Options(batchSize: 3, seed: 9, horizontalFlip: true, dequantize: true)
        let straight = try BatchLoader(dataset: dataset, options: options)
        let batches = try (0..<8).map { _ in try straight.next() }
        // The last batch of an epoch is dropped when too few images remain: 3 batches per epoch.
        #expect(
            batches.map(\.cursor) == [
                LoaderCursor(epoch: 0, position: 3), LoaderCursor(epoch: 0, position: 6),
                LoaderCursor(epoch: 0, position: 9),
                LoaderCursor(epoch: 1, position: 3), LoaderCursor(epoch: 1, position: 6),
                LoaderCursor(epoch: 1, position: 9),
                LoaderCursor(epoch: 2, position: 3), LoaderCursor(epoch: 2, position: 6),
            ])
        let resumed = try BatchLoader(dataset: dataset, options: options, cursor: batches[3].cursor)
        for expected in batches[4...] {
            let batch = try resumed.next()
            #expect(
                batch.images.scalars == expected.images.scalars && batch.labels == expected.labels
                    && batch.cursor == expected.cursor)
        }
    }

    @Test func pixelsBecomeCHWFloatsInRangeWithFlipsAndNoise() throws {
        let folder = try TestImages.temporaryFolder("values")
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makePack(folder)
        let plain = try BatchLoader.makeBatch(
            dataset: dataset, options: .init(batchSize: 10, seed: 1), cursor: LoaderCursor())
        #expect(plain.images.shape == [10, 3, 4, 4])
        let order = BatchLoader.permutation(count: 10, seed: 1, epoch: 0)
        let image = try dataset.image(order[0])
        let values = plain.images.scalars
        for c in 0..<3 {
            for y in 0..<4 {
                for x in 0..<4 {
                    #expect(values[c * 16 + y * 4 + x] == Float(image[x: x, y: y, channel: c]) / 127.5 - 1)
                }
            }
        }
        #expect(plain.labels == order.map { $0 % 3 })
        let noisy = try BatchLoader.makeBatch(
            dataset: dataset, options: .init(batchSize: 10, seed: 1, horizontalFlip: true, dequantize: true),
            cursor: LoaderCursor())
        #expect(noisy.images.scalars.allSatisfy { $0 >= -1 && $0 < 1 })
        var flipped = 0
        let noisyValues = noisy.images.scalars
        for slot in 0..<10 {
            let image = try dataset.image(order[slot])
            let base = slot * 48
            let straight = (0..<4).allSatisfy { x in
                abs(noisyValues[base + x] - (Float(image[x: x, y: 0, channel: 0]) / 128 - 1)) < 1.0 / 128 + 1e-6
            }
            let mirrored = (0..<4).allSatisfy { x in
                abs(noisyValues[base + x] - (Float(image[x: 3 - x, y: 0, channel: 0]) / 128 - 1)) < 1.0 / 128 + 1e-6
            }
            #expect(straight || mirrored)
            if mirrored && !straight { flipped += 1 }
        }
        #expect(flipped > 0 && flipped < 10)
    }

    @Test func badLoaderArgumentsAreRefused() throws {
        let folder = try TestImages.temporaryFolder("args")
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try makePack(folder)
        #expect(throws: DataError.self) { try BatchLoader(dataset: dataset, options: .init(batchSize: 11)) }
        #expect(throws: DataError.self) {
            try BatchLoader(
                dataset: dataset, options: .init(batchSize: 2), cursor: LoaderCursor(epoch: 0, position: 12))
        }
    }
}

@Suite("Default dataset")
struct DefaultDatasetTests {
    @Test func fashionMNISTIsPackedOnFirstUse() throws {
        guard FileManager.default.fileExists(atPath: DefaultDataset.packageFolder) else {
            Issue.record("Debian's dataset-fashion-mnist is not installed (make test installs it)")
            return
        }
        let cache = try TestImages.temporaryFolder("cache")
        defer { try? FileManager.default.removeItem(at: cache) }
        let url = try DefaultDataset.fashionMNIST(cache: cache)
        let dataset = try PackedDataset(contentsOf: url)
        #expect(dataset.count == 60_000 && dataset.height == 32 && dataset.width == 32 && dataset.channels == 1)
        // docs/formats.md §4: the first ten Fashion-MNIST training labels.
        #expect((0..<10).map { dataset.label($0)! } == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        #expect(dataset.labelNames[9] == "Ankle boot")
        let first = try dataset.image(0)
        #expect(first.pixels[0] == 0 && first.pixels.contains { $0 > 200 })
        #expect(try DefaultDataset.fashionMNIST(cache: cache) == url)  // cached, not packed again
    }

    /// The Makefile's order: SAGAN_CACHE, then XDG_CACHE_HOME, then $HOME (not the passwd home).
    @Test func theCacheFolderFollowsTheEnvironment() {
        #expect(
            DefaultDataset.cacheFolder(environment: ["SAGAN_CACHE": "/a", "XDG_CACHE_HOME": "/b", "HOME": "/c"]).path
                == "/a")
        #expect(DefaultDataset.cacheFolder(environment: ["XDG_CACHE_HOME": "/b", "HOME": "/c"]).path == "/b/sagan")
        #expect(DefaultDataset.cacheFolder(environment: ["HOME": "/c"]).path == "/c/.cache/sagan")
        #expect(DefaultDataset.cacheFolder(environment: ["SAGAN_CACHE": "", "HOME": "/c"]).path == "/c/.cache/sagan")
    }

    @Test func aMissingPackageSaysHowToInstallIt() throws {
        do {
            _ = try DefaultDataset.fashionMNIST(
                folder: "/nonexistent/fashion-mnist", cache: FileManager.default.temporaryDirectory)
            Issue.record("no error without the package")
        } catch let error as DataError {
            #expect(error.description.contains("apt-get install dataset-fashion-mnist"))
        }
    }
}
