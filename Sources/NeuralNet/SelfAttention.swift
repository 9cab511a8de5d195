import Autodiff

/// Which self-attention block: the article's and the SAGAN paper's (v1), or the released official code's.
public enum AttentionVariant: String, Codable, Sendable, CaseIterable {
    /// f, g → C/8 and h → C (1x1 convs with bias), softmax over keys, y = γ·o + x. No pooling,
    /// no output projection (the article, paper v1, the author's code).
    case paper
    /// θ, φ → C/8, g → C/2 (no bias), 2x2 max-pool on φ and g, output 1x1 conv back to C,
    /// y = x + γ·o (brain-research/self-attention-gan, BigGAN-PyTorch).
    case biggan
}

/// A self-attention block over an (N, C, H, W) feature map. γ starts at 0, so the block begins as
/// the identity and f, g, h receive no gradient until γ moves (docs/model.md §6.3).
public protocol SelfAttentionLayer: Layer {
    /// The scalar γ scaling the attention output.
    var gamma: Parameter { get }
    /// Whether the block keeps its attention maps, and the last ones it kept.
    var recorder: AttentionRecorder { get }
}

extension SelfAttentionLayer {
    /// The attention maps of the last forward, (N, queries, keys), when `recordsAttention` is set.
    public var lastAttention: Tensor? { recorder.last }
    /// Keep the attention maps of each forward (for pictures; costs N×N floats per image); turning it
    /// off drops the maps kept.
    public var recordsAttention: Bool {
        get { recorder.isOn }
        set { recorder.isOn = newValue }
    }
}

/// What an attention block keeps of its maps: nothing, or while `isOn`, those of the last forward.
public final class AttentionRecorder {
    public var isOn = false {
        didSet { if !isOn { last = nil } }
    }
    public private(set) var last: Tensor?

    init() {}

    /// Each query's softmax over `keys`, applied to `values`: (B, Cv, N) from queries (B, Ck, N), keys
    /// (B, Ck, M) and values (B, Cv, M). The fused kernel, which never stores the N×M map; while
    /// recording, the map itself (kept) and two products in the fused kernel's precision.
    func attend(queries: Tensor, keys: Tensor, values: Tensor) -> Tensor {
        guard isOn else { return Tensor.attention(queries: queries, keys: keys, values: values) }
        let precision = EngineContext.precision
        let attention = Tensor.matmul(queries, keys, transposeA: true, precision: precision).softmax()  // (B, N, M)
        last = attention.detached()
        return Tensor.matmul(values, attention, transposeB: true, precision: precision)
    }
}

/// The article's block (docs/model.md §6.1).
public final class PaperSelfAttention: SelfAttentionLayer {
    public var isTraining = true
    /// Keys, C → C/8.
    public let f: Conv2d
    /// Queries, C → C/8.
    public let g: Conv2d
    /// Values, C → C.
    public let h: Conv2d
    public let gamma: Parameter
    public let recorder = AttentionRecorder()

    public init(
        channels: Int, spectralNorm: Bool = true, initializer: WeightInitializer = .glorotUniform,
        generator: inout RandomGenerator
    ) {
        if channels < 8 { fatalError("PaperSelfAttention: needs at least 8 channels, got \(channels)") }
        f = Conv2d(
            inputs: channels, outputs: channels / 8, kernel: 1, spectralNorm: spectralNorm, initializer: initializer,
            generator: &generator)
        g = Conv2d(
            inputs: channels, outputs: channels / 8, kernel: 1, spectralNorm: spectralNorm, initializer: initializer,
            generator: &generator)
        h = Conv2d(
            inputs: channels, outputs: channels, kernel: 1, spectralNorm: spectralNorm, initializer: initializer,
            generator: &generator)
        gamma = Parameter(Tensor(0))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let positions = height * width
        let keys = f(x).reshaped(to: [batch, channels / 8, positions])  // (B, C/8, N)
        let queries = g(x).reshaped(to: [batch, channels / 8, positions])  // (B, C/8, N)
        let values = h(x).reshaped(to: [batch, channels, positions])  // (B, C, N)
        let attended = recorder.attend(queries: queries, keys: keys, values: values)  // (B, C, N)
        return attended.reshaped(to: x.shape) * gamma.value + x  // (B, C, H, W)
    }

    public var summary: String { "SelfAttention(paper, C=\(h.weight.shape[0]))" }

    public func multiplyAccumulates(forInput input: [Int]) -> Int {
        let (batch, channels, positions) = (input[0], input[1], input[2] * input[3])
        let projections =
            f.multiplyAccumulates(forInput: input) + g.multiplyAccumulates(forInput: input)
            + h.multiplyAccumulates(forInput: input)
        return projections + batch * (positions * positions * (channels / 8) + positions * positions * channels)
    }
}

/// The official code's block (docs/model.md §6.2): keys and values on a 2x2 max-pooled grid.
public final class BigGANSelfAttention: SelfAttentionLayer {
    public var isTraining = true
    /// Queries, C → C/8.
    public let theta: Conv2d
    /// Keys, C → C/8, then pooled.
    public let phi: Conv2d
    /// Values, C → C/2, then pooled.
    public let g: Conv2d
    /// Output projection, C/2 → C.
    public let o: Conv2d
    public let gamma: Parameter
    public let recorder = AttentionRecorder()

    public init(
        channels: Int, spectralNorm: Bool = true, initializer: WeightInitializer = .glorotUniform,
        generator: inout RandomGenerator
    ) {
        if channels < 8 { fatalError("BigGANSelfAttention: needs at least 8 channels, got \(channels)") }
        func projection(_ inputs: Int, _ outputs: Int, _ generator: inout RandomGenerator) -> Conv2d {
            Conv2d(
                inputs: inputs, outputs: outputs, kernel: 1, bias: false, spectralNorm: spectralNorm,
                initializer: initializer, generator: &generator)
        }
        theta = projection(channels, channels / 8, &generator)
        phi = projection(channels, channels / 8, &generator)
        g = projection(channels, channels / 2, &generator)
        o = projection(channels / 2, channels, &generator)
        gamma = Parameter(Tensor(0))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if height % 2 != 0 || width % 2 != 0 {
            fatalError("BigGANSelfAttention: feature map \(height)x\(width) must have even sides for the 2x2 pool")
        }
        let positions = height * width
        let queries = theta(x).reshaped(to: [batch, channels / 8, positions])  // (B, C/8, N)
        let keys = phi(x).maxPool2d(window: 2).reshaped(to: [batch, channels / 8, positions / 4])  // (B, C/8, N/4)
        let values = g(x).maxPool2d(window: 2).reshaped(to: [batch, channels / 2, positions / 4])  // (B, C/2, N/4)
        let attended = recorder.attend(queries: queries, keys: keys, values: values)  // (B, C/2, N)
        let output = o(attended.reshaped(to: [batch, channels / 2, height, width]))  // (B, C, H, W)
        return x + output * gamma.value
    }

    public var summary: String { "SelfAttention(biggan, C=\(o.weight.shape[0]))" }

    public func multiplyAccumulates(forInput input: [Int]) -> Int {
        let (batch, channels, positions) = (input[0], input[1], input[2] * input[3])
        let pooledHalf = [input[0], channels / 2, input[2], input[3]]
        let projections =
            theta.multiplyAccumulates(forInput: input) + phi.multiplyAccumulates(forInput: input)
            + g.multiplyAccumulates(forInput: input) + o.multiplyAccumulates(forInput: pooledHalf)
        return projections + batch
            * (positions * (positions / 4) * (channels / 8) + positions * (positions / 4) * (channels / 2))
    }
}

/// A self-attention block of the chosen variant.
public func makeSelfAttention(
    _ variant: AttentionVariant, channels: Int, spectralNorm: Bool = true,
    initializer: WeightInitializer = .glorotUniform, generator: inout RandomGenerator
) -> any SelfAttentionLayer {
    switch variant {
    case .paper:
        return PaperSelfAttention(
            channels: channels, spectralNorm: spectralNorm, initializer: initializer, generator: &generator)
    case .biggan:
        return BigGANSelfAttention(
            channels: channels, spectralNorm: spectralNorm, initializer: initializer, generator: &generator)
    }
}
