/// The seam between tensors and the code that computes them.
///
/// A backend implements the eight primitives below (convolution in three passes, matrix product,
/// pointwise ops and their gradient, broadcasting arithmetic, reductions) and inherits everything
/// else from `DerivedOperations.swift`, where each fused or derived operation runs its reference
/// kernel on host memory; it overrides those it can do faster (the oneDNN backend overrides most).
///
/// Every kernel takes storages and geometry and returns newly created storages, so a backend is free
/// to choose the memory layout of what it returns (see `OpaqueLayout`) and the device it lives on
/// (see `Device`). Inputs may come from another backend or from the host: a kernel converts what it
/// cannot read (`Storage.onHost()`, `fromHost(_:)`). Shapes are NCHW for images, OIHW for
/// convolution weights; the contract of each kernel is spelled out in `ReferenceKernels`, which is the
/// oracle every backend is tested against. docs/contributing.md walks through adding a backend.
public protocol Backend: AnyObject, Sendable {
    /// What `--backend` and `EngineConfiguration.backend` call it; also its name in logs.
    var id: BackendID { get }

    // MARK: Memory (defaults: host memory)
    /// Where the storages this backend returns live.
    var device: Device { get }
    /// `storage` (host memory, row-major) as this backend keeps its results: itself for host backends,
    /// a copy in device memory for device backends. The derived operations' results pass through it.
    func fromHost(_ storage: Storage) -> Storage

    // MARK: Primitives (every backend implements these)
    /// y = conv(x, w) + b. x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) → y (N, Cout, Ho, Wo).
    func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage
    /// dx from dy (N, Cout, Ho, Wo) and w; also the forward of a transposed convolution.
    func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage
    /// dw (Cout, Cin, kh, kw) and, when `withBias`, db (Cout).
    func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage
    func unary(_ op: UnaryOperation, _ x: Storage) -> Storage
    /// dx given the forward's input x, its output y and dy.
    func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    /// a ∘ b with broadcasting; all three shapes have the same rank.
    func binary(_ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int])
        -> Storage
    /// Reduces `shape` to `outputShape` (same rank, 1 along reduced axes).
    func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage

    // MARK: Batch normalisation (defaults: reference kernels)
    /// Normalises with batch statistics; returns y and the per-channel mean and biased variance.
    func batchNormTraining(_ g: BatchNormGeometry, input: Storage, scale: Storage?, shift: Storage?)
        -> (output: Storage, mean: Storage, variance: Storage)
    /// Normalises with given statistics.
    func batchNormInference(
        _ g: BatchNormGeometry, input: Storage, mean: Storage, variance: Storage, scale: Storage?, shift: Storage?
    ) -> Storage
    /// Backward of `batchNormTraining`: dx, and dscale / dshift when `withParameters` (dscale only if a scale exists).
    func batchNormBackward(
        _ g: BatchNormGeometry, input: Storage, outputGradient: Storage, mean: Storage, variance: Storage,
        scale: Storage?, withParameters: Bool
    ) -> (input: Storage, scale: Storage?, shift: Storage?)

    // MARK: Softmax and attention (defaults: reference kernels)
    /// Softmax along the last axis of a (rows, columns) matrix.
    func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage
    /// dx = y ⊙ (dy − rowsum(dy ⊙ y)).
    func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage
    /// Fused softmax attention (see `AttentionGeometry`), computed in tiles of queries so the
    /// N×M attention map is never stored.
    func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage
    /// Gradients of `attention` for the queries, keys and values; recomputes the map tile by tile.
    func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)

    // MARK: Spectral normalisation (defaults: reference kernels)
    /// W/σ and σ = uᵀ W v for W as `g` describes; with `powerIteration`, first v ← l2n(Wᵀ u) and
    /// u ← l2n(W v), l2n(x) = x / (‖x‖ + ε), and σ uses the new vectors. Returns W/σ, σ and the
    /// vectors σ used (the given ones without `powerIteration`).
    func spectralNorm(_ g: SpectralNormGeometry, weight: Storage, u: Storage, v: Storage, powerIteration: Bool)
        -> (weight: Storage, sigma: Float, u: Storage, v: Storage)
    /// The gradient through W/σ with u and v held constant (so ∂σ/∂W = u vᵀ):
    /// dW = (dW_SN − ⟨dW_SN, W⟩/σ · u vᵀ) / σ, given the raw weight W.
    func spectralNormBackward(
        _ g: SpectralNormGeometry, weight: Storage, outputGradient: Storage, u: Storage, v: Storage,
        sigma: Float
    ) -> Storage

    // MARK: Optimisers (default: reference kernel)
    /// One Adam update of a parameter in a single pass over its elements (moments start at zero
    /// when nil); returns the new parameter and moments.
    func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)

    // MARK: Pooling and data movement (defaults: reference kernels)
    func pool2d(_ op: PoolOperation, _ g: Pool2DGeometry, _ x: Storage) -> Storage
    func pool2dBackward(_ op: PoolOperation, _ g: Pool2DGeometry, input: Storage, outputGradient: Storage) -> Storage
    /// Transposes axes: output axis i is input axis `permutation[i]`.
    func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage
    /// Repeats x of `shape` along its size-1 axes to `outputShape` (same rank).
    func expand(_ x: Storage, shape: [Int], outputShape: [Int]) -> Storage
    /// The elements with index in `range` along `axis`.
    func slice(_ x: Storage, shape: [Int], axis: Int, range: Range<Int>) -> Storage
    /// Joins `parts` (each with its shape, equal but along `axis`) along `axis`.
    func concat(_ parts: [(storage: Storage, shape: [Int])], axis: Int) -> Storage
    /// The values rounded to bf16 (ties to even), as a storage whose `precision` is `.bf16`; the
    /// storage itself when it already is. Data movement keeps its input's precision.
    func roundedToBF16(_ x: Storage) -> Storage

    // MARK: Facts for the engine (defaults: none of these apply)
    /// Threads its kernels use, if it runs threads of its own.
    var threadCount: Int? { get }
    /// Sets how many threads its kernels use; false if it cannot.
    @discardableResult func setThreadCount(_ count: Int) -> Bool
    /// The instruction set its kernels use here ("avx512_core_bf16", …), if it compiles for the CPU.
    var instructionSet: String? { get }
    /// The implementations it chose for the kernels run so far, with how many use each, by kind of
    /// kernel: ["convolution forward": ["jit_bf16:avx512_core_bf16": 12], …].
    var kernelImplementations: [String: [String: Int]] { get }
    /// Whether bf16 needs the CPU's bf16 instructions here (without them it would be emulated,
    /// slower than fp32); the reference backend rounds in software and runs bf16 anywhere.
    var needsBF16Instructions: Bool { get }
}

/// A backend's name, as `--backend` spells it.
public struct BackendID: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    public var description: String { rawValue }

    /// The plain-Swift oracle (`ReferenceBackend`).
    public static let reference: BackendID = "reference"
    /// oneDNN's kernels for this CPU (`OneDNNBackend`).
    public static let oneDNN: BackendID = "onednn"
}

extension Backend {
    /// A short name for logs and test output.
    public var name: String { id.rawValue }

    public var device: Device { .host }
    public func fromHost(_ storage: Storage) -> Storage { storage }

    public var threadCount: Int? { nil }
    @discardableResult public func setThreadCount(_ count: Int) -> Bool { false }
    public var instructionSet: String? { nil }
    public var kernelImplementations: [String: [String: Int]] { [:] }
    public var needsBF16Instructions: Bool { false }
}
