/// The seam between tensors and the code that computes them.
///
/// Every kernel takes storages and geometry and returns newly created storages, so a backend is free
/// to choose the memory layout of what it returns (see `OpaqueLayout`). Inputs may carry a layout
/// from another kernel of the same backend; `Storage.rowMajor()` converts when a kernel needs plain
/// data. Shapes are NCHW for images, OIHW for convolution weights; the contract of each kernel is
/// spelled out in `ReferenceKernels`, which is the oracle every backend is tested against.
public protocol Backend: AnyObject, Sendable {
    /// A short name for logs and test output.
    var name: String { get }

    // MARK: Convolution
    /// y = conv(x, w) + b. x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) → y (N, Cout, Ho, Wo).
    func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage
    /// dx from dy (N, Cout, Ho, Wo) and w; also the forward of a transposed convolution.
    func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage
    /// dw (Cout, Cin, kh, kw) and, when `withBias`, db (Cout).
    func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)

    // MARK: Batch normalisation
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

    // MARK: Pointwise
    func unary(_ op: UnaryOperation, _ x: Storage) -> Storage
    /// dx given the forward's input x, its output y and dy.
    func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    /// a ∘ b with broadcasting; all three shapes have the same rank.
    func binary(_ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int])
        -> Storage

    // MARK: Reductions, softmax, products
    /// Reduces `shape` to `outputShape` (same rank, 1 along reduced axes).
    func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage
    /// Softmax along the last axis of a (rows, columns) matrix.
    func softmax(_ x: Storage, rows: Int, columns: Int) -> Storage
    /// dx = y ⊙ (dy − rowsum(dy ⊙ y)).
    func softmaxBackward(output: Storage, outputGradient: Storage, rows: Int, columns: Int) -> Storage
    func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage
    /// Fused softmax attention (see `AttentionGeometry`), computed in tiles of queries so the
    /// N×M attention map is never stored.
    func attention(_ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage) -> Storage
    /// Gradients of `attention` for the queries, keys and values; recomputes the map tile by tile.
    func attentionBackward(
        _ g: AttentionGeometry, queries: Storage, keys: Storage, values: Storage, outputGradient: Storage
    )
        -> (queries: Storage, keys: Storage, values: Storage)

    // MARK: Spectral normalisation
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

    // MARK: Optimisers
    /// One Adam update of a parameter in a single pass over its elements (moments start at zero
    /// when nil); returns the new parameter and moments.
    func adamUpdate(_ step: AdamStep, parameter: Storage, gradient: Storage, first: Storage?, second: Storage?)
        -> (parameter: Storage, first: Storage, second: Storage)

    // MARK: Data movement
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
}
