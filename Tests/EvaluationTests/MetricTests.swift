import Autodiff
import Evaluation
import FileFormats
import Foundation
import TestSupport
import Testing

/// A symmetric positive definite matrix B Bᵀ + εI from seeded normals.
func randomCovariance(_ n: Int, seed: UInt64, ridge: Double = 0.1) -> Matrix {
    var random = RandomGenerator(seed: seed)
    let b = random.normal(count: n * n).map(Double.init)
    var result = Matrix.zeros(n)
    for i in 0..<n {
        for j in 0..<n { result[i, j] = (0..<n).reduce(0) { $0 + b[i * n + $1] * b[j * n + $1] } / Double(n) }
    }
    for i in 0..<n { result[i, i] += ridge }
    return result
}

@Suite("FID and KID arithmetic")
struct MetricTests {
    @Test(arguments: [1, 2, 7, 40])
    func eigendecompositionReconstructsTheMatrix(size: Int) throws {
        let a = randomCovariance(size, seed: UInt64(size))
        let (values, vectors) = try SymmetricEigen.decompose(a, vectors: true)
        let v = try #require(vectors)
        #expect(values == values.sorted())
        for column in 0..<size {
            for other in 0..<size {
                let dot = (0..<size).reduce(0) { $0 + v[$1, column] * v[$1, other] }
                #expect(Swift.abs(dot - (column == other ? 1 : 0)) < 1e-10, "VᵀV[\(column), \(other)] = \(dot)")
            }
            for row in 0..<size {
                let av = (0..<size).reduce(0) { $0 + a[row, $1] * v[$1, column] }
                #expect(Swift.abs(av - values[column] * v[row, column]) < 1e-10, "A v ≠ λ v at (\(row), \(column))")
            }
        }
        let valuesOnly = try SymmetricEigen.decompose(a, vectors: false).values
        for (x, y) in zip(valuesOnly, values) { #expect(Swift.abs(x - y) < 1e-10) }
    }

    /// The covariance of fewer samples than features (FID at small N) has a cluster of zero
    /// eigenvalues; QL must still converge, and the square root still square back.
    @Test func rankDeficientCovariance() throws {
        var random = RandomGenerator(seed: 9)
        let stats = FeatureStatistics(features: random.normal(count: 40 * 200).map { max($0, 0) }, dimension: 200)
        let (values, _) = try SymmetricEigen.decompose(stats.covariance, vectors: false)
        #expect(values.filter { Swift.abs($0) < 1e-10 }.count >= 200 - 39)
        let root = try FrechetDistance.squareRoot(stats.covariance)
        let worst = zip(root.multiplied(by: root).values, stats.covariance.values).map { Swift.abs($0 - $1) }.max()!
        #expect(worst < 1e-9, "S·S − Σ: \(worst)")
        #expect(try FrechetDistance.distance(stats, stats) < 1e-6)
    }

    @Test func repeatedAndDiagonalEigenvalues() throws {
        #expect(try SymmetricEigen.decompose(.identity(5), vectors: false).values == [1, 1, 1, 1, 1])
        var diagonal = Matrix.zeros(4)
        for (i, value) in [3.0, -1, 2, 0].enumerated() { diagonal[i, i] = value }
        #expect(try SymmetricEigen.decompose(diagonal, vectors: false).values == [-1, 0, 2, 3])
    }

    @Test func squareRootSquaresBack() throws {
        let a = randomCovariance(30, seed: 4)
        let root = try FrechetDistance.squareRoot(a)
        let square = root.multiplied(by: root)
        let worst = zip(square.values, a.values).map { Swift.abs($0 - $1) }.max()!
        #expect(worst < 1e-10, "S·S − A: \(worst)")
    }

    /// Closed forms: equal Gaussians give ‖Δμ‖²; commuting (diagonal) covariances give
    /// Σ(√a − √b)² + ‖Δμ‖²; for 2x2, Tr √(Σ₁Σ₂) = √(tr Σ₁Σ₂ + 2√det Σ₁Σ₂).
    @Test func frechetDistanceKnownCases() throws {
        let a = randomCovariance(12, seed: 1)
        let same = try FrechetDistance.distance(
            FeatureStatistics(count: 9, mean: .init(repeating: 0.5, count: 12), covariance: a),
            FeatureStatistics(count: 9, mean: .init(repeating: 0.25, count: 12), covariance: a))
        #expect(Swift.abs(same - 12 * 0.0625) < 1e-9, "equal covariances: \(same)")

        var d1 = Matrix.zeros(3)
        var d2 = Matrix.zeros(3)
        for (i, (x, y)) in [(4.0, 1.0), (9.0, 16.0), (0.25, 0.25)].enumerated() {
            d1[i, i] = x
            d2[i, i] = y
        }
        let diagonal = try FrechetDistance.distance(
            FeatureStatistics(count: 2, mean: [1, 0, 0], covariance: d1),
            FeatureStatistics(count: 2, mean: [0, 0, 2], covariance: d2))
        #expect(Swift.abs(diagonal - (1 + 1 + 0 + 1 + 4)) < 1e-12, "diagonal: \(diagonal)")

        let s1 = Matrix(size: 2, values: [2, 0.7, 0.7, 1])
        let s2 = Matrix(size: 2, values: [1.5, -0.4, -0.4, 0.8])
        let p = s1.multiplied(by: s2)
        let determinant = p[0, 0] * p[1, 1] - p[0, 1] * p[1, 0]
        let expected = s1.trace + s2.trace - 2 * (p.trace + 2 * determinant.squareRoot()).squareRoot() + 0.09
        let twoByTwo = try FrechetDistance.distance(
            FeatureStatistics(count: 2, mean: [0.3, 0], covariance: s1),
            FeatureStatistics(count: 2, mean: [0, 0], covariance: s2))
        #expect(Swift.abs(twoByTwo - expected) < 1e-12, "2x2: \(twoByTwo) vs \(expected)")
    }

    /// Tr √(Σ₁Σ₂) = Tr √(Σ₂Σ₁): computing through the other set's root must agree.
    @Test func frechetDistanceIsSymmetric() throws {
        let first = FeatureStatistics(
            count: 50, mean: .init(repeating: 0, count: 48), covariance: randomCovariance(48, seed: 2, ridge: 1e-6))
        let second = FeatureStatistics(
            count: 50, mean: .init(repeating: 0.1, count: 48), covariance: randomCovariance(48, seed: 3))
        let forward = try FrechetDistance.distance(first, second)
        let backward = try FrechetDistance.distance(second, first)
        #expect(forward > 0 && Swift.abs(forward - backward) < 1e-9 * max(1, forward), "\(forward) vs \(backward)")
    }

    /// The n×n route for fewer rows than features gives the d×d route's number.
    @Test func fewSamplesTakeTheSmallEigenproblem() throws {
        var random = RandomGenerator(seed: 10)
        let d = 64
        let reference = FeatureStatistics(features: random.normal(count: 300 * d), dimension: d)
        let root = try FrechetDistance.squareRoot(reference.covariance)
        for n in [5, 40, 64, 90] {
            let features = random.normal(count: n * d, mean: 0.2, standardDeviation: 1.3)
            let direct = try FrechetDistance.distance(reference, FeatureStatistics(features: features, dimension: d))
            let small = try FrechetDistance.distance(reference: reference, root: root, features: features)
            #expect(Swift.abs(direct - small) < 1e-8 * direct, "n = \(n): \(small) vs \(direct)")
        }
    }

    @Test func statisticsUseTheUnbiasedCovariance() {
        let stats = FeatureStatistics(features: [1, 2, 3, 6, 5, 4], dimension: 2)  // rows (1,2), (3,6), (5,4)
        #expect(stats.count == 3 && stats.mean == [3, 4])
        #expect(stats.covariance.values == [4, 2, 2, 4])
    }

    /// With one subset of every row, KID is the plain unbiased MMD², computed here directly.
    @Test func kernelInceptionDistanceMatchesADirectComputation() {
        var random = RandomGenerator(seed: 6)
        let d = 5
        let n = 7
        let x = random.normal(count: n * d)
        let y = random.normal(count: n * d, mean: 0.4)
        func k(_ a: [Float], _ i: Int, _ b: [Float], _ j: Int) -> Double {
            let dot = (0..<d).reduce(0.0) { $0 + Double(a[i * d + $1]) * Double(b[j * d + $1]) }
            return pow(dot / Double(d) + 1, 3)
        }
        var xx = 0.0
        var yy = 0.0
        var xy = 0.0
        for i in 0..<n {
            for j in 0..<n {
                if i != j {
                    xx += k(x, i, x, j)
                    yy += k(y, i, y, j)
                }
                xy += k(x, i, y, j)
            }
        }
        let m = Double(n)
        let expected = xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)
        let result = KernelInceptionDistance.compute(real: x, fake: y, dimension: d, subsets: 3, subsetSize: n, seed: 1)
        #expect(Swift.abs(result.mean - expected) < 1e-5 * max(1, Swift.abs(expected)), "\(result.mean) vs \(expected)")
        #expect(result.standardDeviation < 1e-6)
    }

    @Test func kernelInceptionDistanceSeparatesDistributions() {
        var random = RandomGenerator(seed: 7)
        let d = 16
        let a = random.normal(count: 400 * d)
        let b = random.normal(count: 400 * d)
        let shifted = random.normal(count: 400 * d, mean: 0.5)
        let same = KernelInceptionDistance.compute(
            real: a, fake: b, dimension: d, subsets: 20, subsetSize: 100, seed: 2)
        let different = KernelInceptionDistance.compute(
            real: a, fake: shifted, dimension: d, subsets: 20, subsetSize: 100, seed: 2)
        #expect(Swift.abs(same.mean) < 3 * same.standardDeviation + 1e-3, "same distribution: \(same)")
        #expect(different.mean > 10 * max(same.standardDeviation, 1e-4), "shifted: \(different), same: \(same)")
    }

    /// At the real dimension (2048), against numpy: FID through the eigenvalues of Σ_aΣ_b (pytorch-fid's
    /// route, LAPACK's solver) and the unbiased MMD² over all rows. Needs /usr/bin/python3 with numpy
    /// (python3-torch brings it; `make test` installs it).
    @Test(.tags(.slow), .skippedInFastRuns) func agreesWithNumpyAtFullDimension() throws {
        var random = RandomGenerator(seed: 11)
        let d = 2048
        // Feature-like vectors: non-negative (post-ReLU average pools), correlated through a shared part.
        let shared = random.normal(count: d)
        func features(_ n: Int, shift: Float) -> [Float] {
            let noise = random.normal(count: n * d)
            return (0..<(n * d)).map { max(0, shared[$0 % d] + noise[$0] + shift) * 0.3 }
        }
        let a = features(120, shift: 0)
        let b = features(60, shift: 0.2)
        let folder = try temporaryFolder("fid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("features.safetensors")
        try SafeTensorsFile.write(
            [("a", Tensor(shape: [120, d], scalars: a)), ("b", Tensor(shape: [60, d], scalars: b))], to: file)
        let (status, output) = try runReferenceScript("frechet_distance.py", [file.path])
        try #require(status == 0, "frechet_distance.py (needs python3-numpy): \(output)")
        func value(_ name: String) throws -> Double {
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix(name + " ") }, "\(output)")
            return try #require(Double(line.dropFirst(name.count + 1)))
        }
        let reference = FeatureStatistics(features: a, dimension: d)
        let fid = try FrechetDistance.distance(
            reference: reference, root: try FrechetDistance.squareRoot(reference.covariance), features: b)
        let expectedFID = try value("fid")
        #expect(Swift.abs(fid - expectedFID) <= 1e-6 * expectedFID, "FID \(fid) vs numpy \(expectedFID)")
        // One subset of all 60 rows on each side: MMD² does not depend on the rows' order.
        let kid = KernelInceptionDistance.compute(
            real: Array(a.prefix(60 * d)), fake: b, dimension: d, subsets: 1, subsetSize: 60, seed: 0)
        let mmd = try value("mmd")
        #expect(Swift.abs(kid.mean - mmd) <= 1e-4 * Swift.abs(mmd), "KID \(kid.mean) vs numpy \(mmd)")
    }
}
