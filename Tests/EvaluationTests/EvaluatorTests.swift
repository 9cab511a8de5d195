import Autodiff
import Datasets
import Evaluation
import FileFormats
import Foundation
import Testing

/// The evaluation protocol as a library: options, notes, the record and its JSON.
@Suite("Evaluator")
struct EvaluatorTests {
    /// `count` random gray images of `side`x`side`, the same for the same seed.
    static func randomSet(_ name: String, count: Int, side: Int, seed: UInt64) -> ImageSet {
        var random = RandomGenerator(seed: seed)
        let images = (0..<count).map { _ in
            PixelImage(
                width: side, height: side, channels: 1,
                pixels: random.uniform(count: side * side).map { UInt8($0 * 255) })
        }
        return ImageSet(
            name: name, count: count, side: side, channels: 1, fetch: { $0.map { images[$0] } },
            digest: { "\(name)-\(seed)" })
    }

    @Test func metricListsParseInReportOrderAndNameTheFlagWhenWrong() throws {
        #expect(try Metric.parseList("KID, fid") == [.fid, .kid])
        #expect(throws: EvaluationError.invalidOption("metrics: unknown metric \"isx\"; choose from fid, kid, swd, pr"))
        {
            try Metric.parseList("kid,isx")
        }
        #expect(throws: EvaluationError.invalidOption("metrics: name at least one of fid, kid, swd, pr")) {
            try Metric.parseList(" ")
        }
    }

    @Test func optionsAreCheckedAndTheKIDSubsetDefaultsToHalfOfN() throws {
        var options = EvaluationOptions()
        options.count = 10_000
        #expect(options.resolvedKIDSubsetSize == 1000)
        options.count = 300
        #expect(options.resolvedKIDSubsetSize == 150)
        options.kidSubsetSize = 301
        #expect(throws: EvaluationError.invalidOption("kidSubsetSize must be between 2 and count (300), got 301")) {
            try Evaluator(options)
        }
        options.kidSubsetSize = nil
        options.count = 1
        #expect(throws: EvaluationError.invalidOption("count must be at least 2, got 1")) { try Evaluator(options) }
    }

    @Test func notesWarnAboutSmallSamplesAndMixedChannels() throws {
        var options = EvaluationOptions()
        options.count = 100
        let notes = try Evaluator(options).notes(realChannels: 1, fakeChannels: 3)
        #expect(notes.count == 4)
        #expect(notes[0].hasPrefix("real images have 1 channel and fake 3"))
        #expect(
            notes[1].contains("FID from N = 100") && notes[2].contains("KID subsets of 50")
                && notes[3].contains("SWD from N = 100"))
        options.count = 2048
        options.metrics = [.kid]
        #expect(try Evaluator(options).notes(realChannels: 3, fakeChannels: 3).isEmpty)
    }

    /// SWD needs no Inception weights, so the whole path runs here: record fields, seeds, JSON.
    @Test func swdRecordsAreDeterministicAndRoundTripThroughJSON() throws {
        var options = EvaluationOptions()
        options.metrics = [.swd]
        options.count = 16
        options.seed = 4
        let evaluator = try Evaluator(options)
        let real = Self.randomSet("real", count: 20, side: 32, seed: 1)
        let fake = Self.randomSet("fake", count: 16, side: 32, seed: 2)
        let record = try evaluator.evaluate(real: real, fake: fake)
        #expect(record.real == "real" && record.fake == "fake" && record.count == 16 && record.seed == 4)
        #expect(record.kid == nil && record.fid == nil && record.referenceKey == nil)
        let swd = try #require(record.swd)
        #expect(swd.levels.map(\.resolution) == [32, 16])
        #expect(try evaluator.evaluate(real: real, fake: fake) == record, "the same seed gives the same numbers")
        #expect(record.scalars.map(\.tag) == ["Metrics/SWDx1e3_32", "Metrics/SWDx1e3_16", "Metrics/SWDx1e3_avg"])

        let line = try record.jsonLine()
        let object = try #require(try JSONValue(parsing: line).object)
        #expect(
            Set(object.keys) == [
                "real", "fake", "n_real", "n_fake", "seed", "swd_x1e3_32", "swd_x1e3_16", "swd_x1e3_avg", "notes",
            ])
        #expect(try JSONDecoder().decode(EvaluationRecord.self, from: line) == record)
    }

    @Test func setsSmallerThanNAreRefusedWithTheirFlag() throws {
        var options = EvaluationOptions()
        options.metrics = [.swd]
        options.count = 16
        let small = Self.randomSet("small", count: 8, side: 32, seed: 1)
        let enough = Self.randomSet("enough", count: 16, side: 32, seed: 1)
        #expect(
            throws: EvaluationError.tooFewImages(
                "fake small has 8 images; count 16 needs at least as many (lower count)")
        ) {
            try Evaluator(options).evaluate(real: enough, fake: small)
        }
        #expect(throws: EvaluationError.self) { try Evaluator(options).evaluate(real: small, fake: enough) }
    }
}
