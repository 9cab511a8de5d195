import Kernels

#if canImport(Glibc)
    import Glibc
#endif

/// A counter-based random generator (Philox-4x32-10, Salmon et al. 2011).
///
/// Its whole state is the seed and a block counter, so saving and restoring it is exact and
/// cheap, and streams for different purposes can be derived from (seed, purpose) without
/// correlation. Each call consumes whole 128-bit blocks (four 32-bit words).
public struct RandomGenerator: Codable, Hashable, Sendable {
    /// The Philox key.
    public var seed: UInt64
    /// Blocks consumed so far.
    public var counter: UInt64

    public init(seed: UInt64, counter: UInt64 = 0) {
        self.seed = seed
        self.counter = counter
    }

    /// A generator for an independent stream: the same seed with a purpose mixed into the key.
    public func derived(purpose: UInt64) -> RandomGenerator {
        var mixed = seed ^ (purpose &* 0x9E37_79B9_7F4A_7C15)
        mixed = (mixed ^ (mixed >> 31)) &* 0xBF58_476D_1CE4_E5B9
        return RandomGenerator(seed: mixed ^ (mixed >> 29))
    }

    /// The next four 32-bit words.
    public mutating func nextBlock() -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: counter)
        var c1 = UInt32(truncatingIfNeeded: counter >> 32)
        var c2: UInt32 = 0
        var c3: UInt32 = 0
        var k0 = UInt32(truncatingIfNeeded: seed)
        var k1 = UInt32(truncatingIfNeeded: seed >> 32)
        counter &+= 1
        for round in 0..<10 {
            let product0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let product1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let next0 = UInt32(truncatingIfNeeded: product1 >> 32) ^ c1 ^ k0
            let next2 = UInt32(truncatingIfNeeded: product0 >> 32) ^ c3 ^ k1
            c1 = UInt32(truncatingIfNeeded: product1)
            c3 = UInt32(truncatingIfNeeded: product0)
            c0 = next0
            c2 = next2
            if round < 9 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
        }
        return (c0, c1, c2, c3)
    }

    /// `count` draws from U[0, 1) with 24 random bits each.
    public mutating func uniform(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { values, initialized in
            var index = 0
            while index < count {
                let (a, b, c, d) = nextBlock()
                for word in [a, b, c, d].prefix(count - index) {
                    values[index] = Float(word >> 8) * 0x1p-24
                    index += 1
                }
            }
            initialized = count
        }
    }

    /// `count` draws from N(mean, std²) by the Box–Muller transform (in Double).
    public mutating func normal(count: Int, mean: Float = 0, standardDeviation: Float = 1) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { values, initialized in
            var index = 0
            while index < count {
                let (a, b, c, d) = nextBlock()
                for (u, v) in [(a, b), (c, d)] {
                    let radius = (-2 * Glibc.log(Double((u >> 8) + 1) * 0x1p-24)).squareRoot()
                    let angle = 2 * Double.pi * Double(v >> 8) * 0x1p-24
                    if index < count { values[index] = Float(radius * cos(angle)) * standardDeviation + mean }
                    if index + 1 < count { values[index + 1] = Float(radius * sin(angle)) * standardDeviation + mean }
                    index += 2
                }
            }
            initialized = count
        }
    }
}

extension Tensor {
    /// Draws from N(mean, std²).
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout RandomGenerator
    ) -> Tensor {
        Tensor(
            shape: shape,
            scalars: generator.normal(count: ShapeMath.count(shape), mean: mean, standardDeviation: standardDeviation))
    }

    /// Draws from U[low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout RandomGenerator)
        -> Tensor
    {
        Tensor(shape: shape, scalars: generator.uniform(count: ShapeMath.count(shape)).map { low + (high - low) * $0 })
    }
}
