import FileFormats
import Kernels

// Matrix products, softmax and pooling.

extension Tensor {
    /// op(a) · op(b) for matrices (m, k)·(k, n) or batches (B, m, k)·(B, k, n); a batch of 1 in one
    /// operand broadcasts over the other's. `transposeA`/`transposeB` read that operand's last two axes swapped.
    /// Float32 unless `precision` says otherwise (layers pass `EngineContext.precision`; metrics and
    /// spectral norm keep Float32); the gradients use the same precision. Under bf16 the result is
    /// bf16, and so is each operand's gradient when that operand is (an activation's, not a weight's).
    public static func matmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false, precision: Precision = .fp32
    ) -> Tensor {
        matmul(a, b, transposeA: transposeA, transposeB: transposeB, precision: precision, result: precision)
    }

    /// `matmul` with its result in `result`'s format (bf16 only under bf16 `precision`).
    private static func matmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, precision: Precision, result: Precision
    ) -> Tensor {
        require(
            (a.rank == 2 || a.rank == 3) && (b.rank == 2 || b.rank == 3),
            "matmul: operands must be matrices or batches of matrices, got \(a.shape) and \(b.shape)")
        let aRows = a.shape[a.rank - 2]
        let aColumns = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2]
        let bColumns = b.shape[b.rank - 1]
        let (m, k) = transposeA ? (aColumns, aRows) : (aRows, aColumns)
        let (kB, n) = transposeB ? (bColumns, bRows) : (bRows, bColumns)
        require(
            k == kB,
            "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = a.rank == 3 ? a.shape[0] : 1
        let batchB = b.rank == 3 ? b.shape[0] : 1
        var g = validated {
            try MatmulGeometry(
                batchA: batchA, batchB: batchB, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB)
        }
        g.precision = precision
        let outputShape = a.rank == 3 || b.rank == 3 ? [g.batch, m, n] : [m, n]
        let output = ResultPrecision.product(EngineContext.backend.matmul(g, a.storage, b.storage), result)
        let aValue = a.detached()
        let bValue = b.detached()
        let (aResult, bResult) = (
            a.precision == .bf16 ? precision : .fp32, b.precision == .bf16 ? precision : .fp32
        )
        return record("matmul", shape: outputShape, storage: output, inputs: [a, b]) { dc, wanted in
            var da: Tensor?
            var db: Tensor?
            if wanted[0] {
                da =
                    transposeA
                    ? matmul(
                        bValue, dc, transposeA: transposeB, transposeB: true, precision: precision, result: aResult)
                    : matmul(
                        dc, bValue, transposeA: false, transposeB: !transposeB, precision: precision, result: aResult)
            }
            if wanted[1] {
                db =
                    transposeB
                    ? matmul(
                        dc, aValue, transposeA: true, transposeB: transposeA, precision: precision, result: bResult)
                    : matmul(
                        aValue, dc, transposeA: !transposeA, transposeB: false, precision: precision, result: bResult)
            }
            return [da.map { reduceBatch($0, to: aValue.shape) }, db.map { reduceBatch($0, to: bValue.shape) }]
        }
    }

    /// Sums the gradient of a broadcast operand over the batch it was broadcast to.
    private static func reduceBatch(_ gradient: Tensor, to shape: [Int]) -> Tensor {
        if gradient.shape == shape { return gradient }
        return gradient.sum(alongAxes: [0], keepingDimensions: shape.count == 3).reshaped(to: shape)
    }

    /// x (N, in) · weightᵀ (in, out) + bias (out), the product in the engine's precision.
    public static func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        require(
            input.rank == 2 && weight.rank == 2 && input.shape[1] == weight.shape[1],
            "linear: input \(input.shape) does not match weight \(weight.shape) (expects (N, "
                + "\(weight.rank == 2 ? weight.shape[1] : -1)))"
        )
        let product = matmul(input, weight, transposeB: true, precision: EngineContext.precision)
        guard let bias else { return product }
        require(
            bias.shape == [weight.shape[0]],
            "linear: bias shape \(bias.shape) does not match \(weight.shape[0]) outputs")
        return product + bias
    }

    /// Softmax over the last axis.
    public func softmax() -> Tensor {
        require(rank >= 1 && count > 0, "softmax: needs a non-empty tensor with at least one axis, shape is \(shape)")
        let columns = shape[rank - 1]
        let rows = count / columns
        let backend = EngineContext.backend
        let output = backend.softmax(storage, rows: rows, columns: columns)
        return Tensor.record("softmax", shape: shape, storage: output, inputs: [self]) { gradient, _ in
            [
                Tensor(
                    shape: gradient.shape,
                    storage: backend.softmaxBackward(
                        output: output, outputGradient: gradient.storage, rows: rows, columns: columns))
            ]
        }
    }

    /// Max pooling over non-overlapping `window`×`window` squares of an (N, C, H, W) tensor.
    public func maxPool2d(window: Int = 2) -> Tensor { pool2d(.max, window: window, stride: window, padding: 0) }

    /// Max pooling of an (N, C, H, W) tensor; padding never wins a window.
    public func maxPool2d(window: Int, stride: Int, padding: Int = 0) -> Tensor {
        pool2d(.max, window: window, stride: stride, padding: padding)
    }

    /// Average pooling of an (N, C, H, W) tensor; each window averages only its positions inside
    /// the input (padding is not counted).
    public func avgPool2d(window: Int, stride: Int, padding: Int = 0) -> Tensor {
        pool2d(.average, window: window, stride: stride, padding: padding)
    }

    func pool2d(_ op: PoolOperation, window: Int, stride: Int, padding: Int) -> Tensor {
        let name: StaticString = op == .max ? "maxPool2d" : "avgPool2d"
        require(rank == 4, "\(name): input must be (N, C, H, W), got \(shape)")
        let g = validated {
            try Pool2DGeometry(
                batch: shape[0], channels: shape[1], inHeight: shape[2], inWidth: shape[3], window: window,
                stride: stride, padding: padding)
        }
        let backend = EngineContext.backend
        let x = storage
        let inputShape = shape
        return Tensor.record(name, shape: g.outputShape, storage: backend.pool2d(op, g, x), inputs: [self]) {
            gradient, _ in
            [
                Tensor(
                    shape: inputShape,
                    storage: backend.pool2dBackward(op, g, input: x, outputGradient: gradient.storage))
            ]
        }
    }
}

extension Tensor {
    /// Fused softmax attention: queries (B, Ck, N), keys (B, Ck, M), values (B, Cv, M) →
    /// (B, Cv, N) with output[:, n] = Σ_m softmax_m(queries[:, n]ᵀ keys[:, m]) values[:, m].
    /// The same as `matmul(values, matmul(queries, keys, transposeA: true).softmax(), transposeB: true)`
    /// (both products in the engine's precision),
    /// but the N×M attention map is never stored, forward or backward.
    public static func attention(queries: Tensor, keys: Tensor, values: Tensor) -> Tensor {
        require(
            queries.rank == 3 && keys.rank == 3 && values.rank == 3 && queries.shape[0] == keys.shape[0]
                && keys.shape[0] == values.shape[0] && queries.shape[1] == keys.shape[1]
                && keys.shape[2] == values.shape[2],
            "attention: queries (B, Ck, N), keys (B, Ck, M) and values (B, Cv, M) do not fit: \(queries.shape), "
                + "\(keys.shape), \(values.shape)"
        )
        var g = validated {
            try AttentionGeometry(
                batch: queries.shape[0], keyChannels: queries.shape[1], valueChannels: values.shape[1],
                queries: queries.shape[2], keys: keys.shape[2])
        }
        g.precision = EngineContext.precision
        let backend = EngineContext.backend
        let (q, k, v) = (queries.storage, keys.storage, values.storage)
        let output = ResultPrecision.product(backend.attention(g, queries: q, keys: k, values: v), g.precision)
        let shapes = (queries.shape, keys.shape, values.shape)
        return record(
            "attention", shape: [g.batch, g.valueChannels, g.queries], storage: output, inputs: [queries, keys, values]
        ) { gradient, wanted in
            let (dq, dk, dv) = backend.attentionBackward(
                g, queries: q, keys: k, values: v, outputGradient: gradient.storage)
            let rounded = { (storage: Storage) in ResultPrecision.product(storage, g.precision) }
            return [
                wanted[0] ? Tensor(shape: shapes.0, storage: rounded(dq)) : nil,
                wanted[1] ? Tensor(shape: shapes.1, storage: rounded(dk)) : nil,
                wanted[2] ? Tensor(shape: shapes.2, storage: rounded(dv)) : nil,
            ]
        }
    }
}
