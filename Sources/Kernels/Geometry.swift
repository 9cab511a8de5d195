/// Why a kernel refused its arguments; the message names the op and the shapes involved.
public enum ShapeError: Error, CustomStringConvertible, Equatable {
    /// `operation` ("conv2d", "matmul", …) cannot run on these arguments; the message says which
    /// dimension is at fault and lists them all.
    case invalidArguments(_ operation: String, _ message: String)

    public var description: String {
        switch self {
        case .invalidArguments(let operation, let message): return "\(operation): \(message)"
        }
    }
}

/// A 2-D convolution over NCHW input with OIHW weights; zero padding on both sides of each axis
/// (per axis, so 1x7 kernels can pad only their long side, as InceptionV3 does).
///
/// Transposed convolutions reuse this type: a transposed convolution is the data gradient of the
/// convolution that maps its output back to its input.
public struct Conv2DGeometry: Hashable, Sendable, CustomStringConvertible {
    /// Settable inside Kernels only: a backend may run the same convolution on a share of the batch.
    public internal(set) var batch: Int
    public let inChannels: Int
    public let outChannels: Int
    public let inHeight: Int
    public let inWidth: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    /// Zero rows added above and below.
    public let paddingHeight: Int
    /// Zero columns added left and right.
    public let paddingWidth: Int
    public let outHeight: Int
    public let outWidth: Int
    /// The format of the products (see `Precision`); the gradients run in the forward's.
    public var precision = Precision.fp32

    public init(
        batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int,
        kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int
    ) throws(ShapeError) {
        try self.init(
            batch: batch, inChannels: inChannels, outChannels: outChannels, inHeight: inHeight, inWidth: inWidth,
            kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, paddingHeight: padding,
            paddingWidth: padding)
    }

    public init(
        batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int,
        kernelHeight: Int, kernelWidth: Int, stride: Int, paddingHeight: Int, paddingWidth: Int
    ) throws(ShapeError) {
        let padding = paddingHeight == paddingWidth ? "\(paddingHeight)" : "\(paddingHeight)x\(paddingWidth)"
        let described =
            "input (\(batch), \(inChannels), \(inHeight), \(inWidth)), weight (\(outChannels), \(inChannels), "
            + "\(kernelHeight), \(kernelWidth)), stride \(stride), padding \(padding)"
        guard batch > 0, inChannels > 0, outChannels > 0, inHeight > 0, inWidth > 0 else {
            throw ShapeError.invalidArguments("conv2d", "every dimension must be positive: \(described)")
        }
        guard kernelHeight > 0, kernelWidth > 0 else {
            throw ShapeError.invalidArguments("conv2d", "kernel must be positive: \(described)")
        }
        guard stride > 0 else { throw ShapeError.invalidArguments("conv2d", "stride must be positive: \(described)") }
        guard paddingHeight >= 0, paddingWidth >= 0 else {
            throw ShapeError.invalidArguments("conv2d", "padding must not be negative: \(described)")
        }
        guard paddingHeight < kernelHeight, paddingWidth < kernelWidth else {
            throw ShapeError.invalidArguments("conv2d", "padding must be smaller than the kernel: \(described)")
        }
        guard inHeight + 2 * paddingHeight >= kernelHeight, inWidth + 2 * paddingWidth >= kernelWidth else {
            throw ShapeError.invalidArguments("conv2d", "kernel larger than the padded input: \(described)")
        }
        self.batch = batch
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        self.outHeight = (inHeight + 2 * paddingHeight - kernelHeight) / stride + 1
        self.outWidth = (inWidth + 2 * paddingWidth - kernelWidth) / stride + 1
    }

    public var inputShape: [Int] { [batch, inChannels, inHeight, inWidth] }
    public var weightShape: [Int] { [outChannels, inChannels, kernelHeight, kernelWidth] }
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    /// Multiply-accumulates of one forward pass.
    public var multiplyAccumulates: Int {
        batch * outChannels * outHeight * outWidth * inChannels * kernelHeight * kernelWidth
    }
    public var description: String {
        let padding = paddingHeight == paddingWidth ? "\(paddingHeight)" : "\(paddingHeight)x\(paddingWidth)"
        return
            "conv \(inputShape)→\(outputShape) kernel \(kernelHeight)x\(kernelWidth) stride \(stride) padding "
            + "\(padding)\(precision == .fp32 ? "" : " \(precision)")"
    }
}

/// Batch normalisation over the N, H and W axes of NCHW data, one statistic per channel.
public struct BatchNormGeometry: Hashable, Sendable {
    public let batch: Int
    public let channels: Int
    /// H·W, the positions per channel per image.
    public let spatial: Int
    public let epsilon: Float

    public init(batch: Int, channels: Int, spatial: Int, epsilon: Float) throws(ShapeError) {
        guard batch > 0, channels > 0, spatial > 0 else {
            throw ShapeError.invalidArguments(
                "batchNorm",
                "every dimension must be positive: batch \(batch), channels \(channels), spatial \(spatial)")
        }
        guard epsilon > 0, epsilon.isFinite else {
            throw ShapeError.invalidArguments("batchNorm", "epsilon must be positive, got \(epsilon)")
        }
        self.batch = batch
        self.channels = channels
        self.spatial = spatial
        self.epsilon = epsilon
    }

    /// Elements reduced into each statistic.
    public var reductionSize: Int { batch * spatial }
    public var count: Int { batch * channels * spatial }
}

/// A batched matrix product C[b] = op(A[b]) · op(B[b]) with C[b] of size m × n.
///
/// A is stored as (batchA, m, k), or (batchA, k, m) when `transposeA`; B as (batchB, k, n), or
/// (batchB, n, k) when `transposeB`. A batch count of 1 broadcasts over the other operand's batch.
public struct MatmulGeometry: Hashable, Sendable {
    public let batch: Int
    public let m: Int
    public let n: Int
    public let k: Int
    public let transposeA: Bool
    public let transposeB: Bool
    public let batchA: Int
    public let batchB: Int
    /// The format of the products (see `Precision`).
    public var precision = Precision.fp32

    public init(
        batchA: Int, batchB: Int, m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false
    ) throws(ShapeError) {
        guard m > 0, n > 0, k > 0, batchA > 0, batchB > 0 else {
            throw ShapeError.invalidArguments(
                "matmul", "every dimension must be positive: batch \(batchA)/\(batchB), m \(m), n \(n), k \(k)")
        }
        guard batchA == batchB || batchA == 1 || batchB == 1 else {
            throw ShapeError.invalidArguments("matmul", "batch sizes \(batchA) and \(batchB) do not broadcast")
        }
        self.batch = max(batchA, batchB)
        self.batchA = batchA
        self.batchB = batchB
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
    }
}

/// Pooling with a square window over NCHW data: window, stride and zero padding on every side;
/// outputs in floor mode, (H + 2·padding − window) / stride + 1, as PyTorch and TensorFlow count them.
public struct Pool2DGeometry: Hashable, Sendable, CustomStringConvertible {
    public let batch: Int
    public let channels: Int
    public let inHeight: Int
    public let inWidth: Int
    public let window: Int
    public let stride: Int
    public let padding: Int
    public let outHeight: Int
    public let outWidth: Int

    /// Non-overlapping windows (stride = window), no padding: SAGAN's 2x2 pool.
    public init(batch: Int, channels: Int, inHeight: Int, inWidth: Int, window: Int) throws(ShapeError) {
        try self.init(
            batch: batch, channels: channels, inHeight: inHeight, inWidth: inWidth, window: window, stride: window,
            padding: 0)
    }

    public init(batch: Int, channels: Int, inHeight: Int, inWidth: Int, window: Int, stride: Int, padding: Int)
        throws(ShapeError)
    {
        let described =
            "input (\(batch), \(channels), \(inHeight), \(inWidth)), window \(window), stride \(stride), padding "
            + "\(padding)"
        guard batch > 0, channels > 0, inHeight > 0, inWidth > 0, window > 0, stride > 0 else {
            throw ShapeError.invalidArguments("pool2d", "every dimension must be positive: \(described)")
        }
        // A window must always see at least one real element (PyTorch's limit).
        guard padding >= 0, 2 * padding <= window else {
            throw ShapeError.invalidArguments("pool2d", "padding must be between 0 and half the window: \(described)")
        }
        guard inHeight + 2 * padding >= window, inWidth + 2 * padding >= window else {
            throw ShapeError.invalidArguments("pool2d", "window larger than the padded input: \(described)")
        }
        self.batch = batch
        self.channels = channels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.window = window
        self.stride = stride
        self.padding = padding
        self.outHeight = (inHeight + 2 * padding - window) / stride + 1
        self.outWidth = (inWidth + 2 * padding - window) / stride + 1
    }

    public var inputShape: [Int] { [batch, channels, inHeight, inWidth] }
    public var outputShape: [Int] { [batch, channels, outHeight, outWidth] }

    /// The input rows (or columns) that output row (column) `index` reads, clipped to the input.
    public func rows(_ index: Int) -> Range<Int> {
        max(0, index * stride - padding)..<min(inHeight, index * stride - padding + window)
    }
    public func columns(_ index: Int) -> Range<Int> {
        max(0, index * stride - padding)..<min(inWidth, index * stride - padding + window)
    }

    public var description: String {
        "pool \(inputShape)→\(outputShape) window \(window) stride \(stride) padding \(padding)"
    }
}

/// Softmax attention over sequences: queries q (B, Ck, N), keys k (B, Ck, M), values v (B, Cv, M)
/// → o (B, Cv, N) with o[:, n] = Σ_m softmax_m(Σ_c q[c, n] k[c, m]) · v[:, m] (docs/model.md §6).
public struct AttentionGeometry: Hashable, Sendable {
    public let batch: Int
    public let keyChannels: Int
    public let valueChannels: Int
    public let queries: Int
    public let keys: Int
    /// The format of the two products qᵀk and v·Pᵀ (see `Precision`); the softmax is Float32.
    public var precision = Precision.fp32

    public init(batch: Int, keyChannels: Int, valueChannels: Int, queries: Int, keys: Int) throws(ShapeError) {
        guard batch > 0, keyChannels > 0, valueChannels > 0, queries > 0, keys > 0 else {
            throw ShapeError.invalidArguments(
                "attention",
                "every dimension must be positive: batch \(batch), key channels \(keyChannels), value "
                    + "channels \(valueChannels), queries \(queries), keys \(keys)"
            )
        }
        self.batch = batch
        self.keyChannels = keyChannels
        self.valueChannels = valueChannels
        self.queries = queries
        self.keys = keys
    }

    /// Queries handled together: the (tile, keys) score block is the only N×M-sized memory used.
    public var tile: Int { min(queries, 128) }
}

/// Spectral normalisation of a weight stored as `blocks` row-major (outputs, inner) matrices one
/// after another, read as the (outputs, blocks·inner) matrix W that puts them side by side: one
/// block for a Linear (out, in) or Conv2d (out, in, kh, kw) weight; one per input channel for a
/// transposed convolution's (in, out, kh, kw) weight, whose permuted matrix is never formed.
/// u has `outputs` elements; v has `blocks·inner`, ordered (block, inner).
public struct SpectralNormGeometry: Hashable, Sendable {
    public let blocks: Int
    public let outputs: Int
    public let inner: Int
    /// ε in l2n(x) = x / (‖x‖ + ε).
    public let epsilon: Float
    /// The weight's own shape when known: a backend may hand W/σ over in the layout the weight's
    /// consumer reads (a convolution's blocked weight layout) instead of row-major.
    public let weightShape: [Int]?
    /// The precision of the products that read W/σ. Under bf16 they read it rounded, so W/σ is
    /// rounded as it is written (docs/model.md §9), and a backend may store it in bf16.
    public var precision = Precision.fp32

    public init(blocks: Int, outputs: Int, inner: Int, epsilon: Float, weightShape: [Int]? = nil) throws(ShapeError) {
        guard blocks > 0, outputs > 0, inner > 0 else {
            throw ShapeError.invalidArguments(
                "spectralNorm", "every dimension must be positive: blocks \(blocks), outputs \(outputs), inner \(inner)"
            )
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw ShapeError.invalidArguments("spectralNorm", "epsilon must be finite and not negative, got \(epsilon)")
        }
        guard weightShape.map({ ShapeMath.count($0) == blocks * outputs * inner }) ?? true else {
            throw ShapeError.invalidArguments(
                "spectralNorm", "weight shape \(weightShape!) does not hold \(blocks) block(s) of \(outputs)x\(inner)")
        }
        self.blocks = blocks
        self.outputs = outputs
        self.inner = inner
        self.epsilon = epsilon
        self.weightShape = weightShape
    }

    /// Elements of the weight.
    public var count: Int { blocks * outputs * inner }
    /// Elements of v.
    public var rightCount: Int { blocks * inner }
}
