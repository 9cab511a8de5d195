import Autodiff
import Foundation

/// Improved precision and recall (Kynkäänniemi et al. 2019), with density and coverage (Naeem et al.
/// 2020) from the same neighbourhoods, in Inception features. Each real feature has a ball reaching
/// its k-th nearest real neighbour, each fake one its k-th nearest fake neighbour: precision is the
/// share of fake samples inside some real ball (images look real), recall the share of real samples
/// inside some fake ball (the generator covers the data); density counts real balls per fake sample
/// (divided by k), coverage is the share of real balls holding a fake sample. Distances are taken in
/// blocks of rows, so memory is O(N · block), not O(N²).
public enum PrecisionRecall {
    public struct Result: Equatable, Sendable {
        public let precision: Double
        public let recall: Double
        public let density: Double
        public let coverage: Double
        /// The neighbour that sets each ball's radius.
        public let k: Int

        public init(precision: Double, recall: Double, density: Double, coverage: Double, k: Int) {
            (self.precision, self.recall, self.density, self.coverage, self.k) = (
                precision, recall, density, coverage, k
            )
        }
    }

    /// The four numbers for `real` (N × `dimension`) and `fake` (M × `dimension`) features, row-major.
    public static func compute(real: [Float], fake: [Float], dimension: Int, k: Int = 3, block: Int = 256) -> Result {
        let realCount = real.count / dimension
        let fakeCount = fake.count / dimension
        precondition(
            k >= 1 && realCount > k && fakeCount > k, "precision/recall: needs more than k = \(k) rows per set")
        let realRows = Tensor(shape: [realCount, dimension], scalars: real)  // (N, d)
        let fakeRows = Tensor(shape: [fakeCount, dimension], scalars: fake)  // (M, d)
        let realNorms = squaredNorms(real, dimension)
        let fakeNorms = squaredNorms(fake, dimension)
        let realRadii = kthNeighbour(realRows, realNorms, k: k, block: block)  // squared radii, (N)
        let fakeRadii = kthNeighbour(fakeRows, fakeNorms, k: k, block: block)  // (M)

        var insideSomeRealBall = 0
        var realBallsHoldingFake = 0
        var realCoveredByFake = [Bool](repeating: false, count: realCount)  // recall
        var realBallHasFake = [Bool](repeating: false, count: realCount)  // coverage
        forEachBlock(of: fakeRows, against: realRows, fakeNorms, realNorms, block: block) { fakeIndex, distances in
            var inside = false
            for realIndex in 0..<realCount {
                let distance = distances[realIndex]
                if distance <= realRadii[realIndex] {
                    inside = true
                    realBallsHoldingFake += 1
                    realBallHasFake[realIndex] = true
                }
                if distance <= fakeRadii[fakeIndex] { realCoveredByFake[realIndex] = true }
            }
            if inside { insideSomeRealBall += 1 }
        }
        return Result(
            precision: Double(insideSomeRealBall) / Double(fakeCount),
            recall: Double(realCoveredByFake.filter { $0 }.count) / Double(realCount),
            density: Double(realBallsHoldingFake) / Double(k * fakeCount),
            coverage: Double(realBallHasFake.filter { $0 }.count) / Double(realCount), k: k)
    }

    static func squaredNorms(_ rows: [Float], _ dimension: Int) -> [Float] {
        rows.withUnsafeBufferPointer { values in
            (0..<(rows.count / dimension)).map { row in
                var sum: Float = 0
                for index in (row * dimension)..<((row + 1) * dimension) { sum += values[index] * values[index] }
                return sum
            }
        }
    }

    /// Each row's squared distance to its k-th nearest other row of the same set (the row itself,
    /// at distance 0, comes first among the k + 1 smallest).
    static func kthNeighbour(_ rows: Tensor, _ norms: [Float], k: Int, block: Int) -> [Float] {
        var radii = [Float](repeating: 0, count: rows.shape[0])
        var smallest = [Float](repeating: .infinity, count: k + 1)  // ascending; reused row after row
        forEachBlock(of: rows, against: rows, norms, norms, block: block) { row, distances in
            for slot in 0...k { smallest[slot] = .infinity }
            for distance in distances where distance < smallest[k] {
                var slot = k
                while slot > 0 && smallest[slot - 1] > distance {
                    smallest[slot] = smallest[slot - 1]
                    slot -= 1
                }
                smallest[slot] = distance
            }
            radii[row] = smallest[k]
        }
        return radii
    }

    /// Calls `body` with each row of `rows` and its squared distances to every row of `others`,
    /// ‖a‖² + ‖b‖² − 2 a·b with the products of `block` rows at a time on the engine.
    static func forEachBlock(
        of rows: Tensor, against others: Tensor, _ rowNorms: [Float], _ otherNorms: [Float], block: Int,
        _ body: (Int, UnsafeBufferPointer<Float>) -> Void
    ) {
        let count = rows.shape[0]
        let otherCount = others.shape[0]
        var distances = [Float](repeating: 0, count: otherCount)
        for start in stride(from: 0, to: count, by: block) {
            let end = min(start + block, count)
            let products = noGrad {
                Tensor.matmul(rows.sliced(alongAxis: 0, start..<end), others, transposeB: true)
            }.scalars  // (end − start, otherCount)
            for row in start..<end {
                let offset = (row - start) * otherCount
                for other in 0..<otherCount {
                    distances[other] = max(0, rowNorms[row] + otherNorms[other] - 2 * products[offset + other])
                }
                distances.withUnsafeBufferPointer { body(row, $0) }
            }
        }
    }
}

/// Precision and recall as a metric of the protocol (k = 3, as Kynkäänniemi et al. report).
struct PrecisionRecallMetric: MetricDefinition {
    let name = "pr"
    let title = "Recall"
    let input = MetricInput.inceptionFeatures
    /// The best checkpoint by recall: a collapsing generator keeps its precision and loses recall.
    let lowerIsBetter = false
    let headlineKey = "recall"

    func notes(_ options: EvaluationOptions) -> [String] {
        guard options.count < 1000 else { return [] }
        return ["warning: precision and recall from N = \(options.count) per side move by several points between seeds"]
    }

    func compute(_ inputs: MetricInputs) throws -> any MetricValue {
        PrecisionRecall.compute(
            real: inputs.realFeatures!.features, fake: inputs.fakeFeatures!, dimension: InceptionV3.featureCount)
    }

    func decode(_ entries: RecordEntries) throws -> (any MetricValue)? {
        guard let precision = try entries.number("precision"), let recall = try entries.number("recall"),
            let density = try entries.number("density"), let coverage = try entries.number("coverage"),
            let k = try entries.number("pr_k")
        else { return nil }
        return PrecisionRecall.Result(
            precision: precision, recall: recall, density: density, coverage: coverage, k: Int(k))
    }
}

extension PrecisionRecall.Result: MetricValue {
    public var headline: Double { recall }
    public var entries: [(key: String, value: RecordEntry)] {
        [
            ("precision", .number(precision)), ("recall", .number(recall)), ("density", .number(density)),
            ("coverage", .number(coverage)), ("pr_k", .number(Double(k))),
        ]
    }
    public var scalars: [(tag: String, value: Float)] {
        [
            ("Metrics/Precision", Float(precision)), ("Metrics/Recall", Float(recall)),
            ("Metrics/Density", Float(density)), ("Metrics/Coverage", Float(coverage)),
        ]
    }
    public var summary: String { String(format: "precision %.3f, recall %.3f", precision, recall) }
    public var report: [String] {
        [
            String(format: "  precision %.4f, recall %.4f (k = %d)", precision, recall, k),
            String(format: "  density %.4f, coverage %.4f", density, coverage),
        ]
    }
}

extension Metric {
    /// Improved precision and recall, with density and coverage (docs/evaluation.md §5).
    public static let precisionRecall = Metric(PrecisionRecallMetric())
}

extension EvaluationRecord {
    public var precisionRecall: PrecisionRecall.Result? { values[.precisionRecall] as? PrecisionRecall.Result }
}
