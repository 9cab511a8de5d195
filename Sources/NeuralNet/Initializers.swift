import Autodiff

/// How a layer's weight is drawn at construction.
public enum WeightInitializer: Codable, Sendable, Hashable {
    /// U(−√(6/(fanIn + fanOut)), +√(6/(fanIn + fanOut))): Keras's default, used by the article's code.
    case glorotUniform
    /// U(−1/√fanIn, +1/√fanIn): PyTorch's default for Linear and Conv (Kaiming uniform with a = √5).
    case pytorchDefault
    /// N(0, std²): DCGAN's N(0, 0.02²).
    case normal(standardDeviation: Float)

    /// A weight of `shape` with the given fans.
    public func make(_ shape: [Int], fanIn: Int, fanOut: Int, generator: inout RandomGenerator) -> Tensor {
        switch self {
        case .glorotUniform:
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            return .randomUniform(shape, low: -limit, high: limit, generator: &generator)
        case .pytorchDefault:
            let limit = 1 / Float(fanIn).squareRoot()
            return .randomUniform(shape, low: -limit, high: limit, generator: &generator)
        case .normal(let standardDeviation):
            return .randomNormal(shape, standardDeviation: standardDeviation, generator: &generator)
        }
    }
}
