import Autodiff
import NeuralNet

/// An exponential moving average of one module's parameters kept in another module of the same
/// architecture (G_ema): θ_ema ← decay·θ_ema + (1 − decay)·θ. Buffers (BN statistics, SN vectors)
/// are copied, not averaged.
public struct ModuleAverage {
    public let decay: Float
    private let pairs: [(source: Parameter, average: Parameter)]
    private let buffers: [(source: Buffer, average: Buffer)]

    /// `average` must have the same architecture as `source`; it starts as a copy.
    public init(of source: any Module, into average: any Module, decay: Float) {
        let sourceParameters = source.namedParameters()
        let averageParameters = average.namedParameters()
        guard sourceParameters.map(\.name) == averageParameters.map(\.name) else {
            fatalError("ModuleAverage: the two modules have different parameters")
        }
        self.decay = decay
        pairs = zip(sourceParameters, averageParameters).map { ($0.parameter, $1.parameter) }
        buffers = zip(source.namedBuffers(), average.namedBuffers()).map { ($0.buffer, $1.buffer) }
        for (source, average) in pairs { average.assign(source.value) }
        copyBuffers()
    }

    public func update() {
        noGrad {
            for (source, average) in pairs {
                average.assign(average.value * decay + source.value * (1 - decay))
            }
        }
        copyBuffers()
    }

    private func copyBuffers() {
        for (source, average) in buffers { average.assign(source.value) }
    }
}
