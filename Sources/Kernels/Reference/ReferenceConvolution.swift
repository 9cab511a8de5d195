/// Plain-loop kernels, generic over the element type: obviously correct, slow, and the oracle that
/// every other backend and every gradient is checked against. Output-first argument order
/// (`y`, then inputs), all buffers dense row-major.
public enum ReferenceKernels {}

extension ReferenceKernels {
    /// y[n,o,i,j] = b[o] + Σ_{c,p,q} x[n,c,i·s−padH+p, j·s−padW+q] · w[o,c,p,q]
    public static func conv2dForward<T: ReferenceScalar>(
        _ g: Conv2DGeometry, y: UnsafeMutablePointer<T>, x: UnsafePointer<T>, w: UnsafePointer<T>, b: UnsafePointer<T>?
    ) {
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for i in 0..<g.outHeight {
                    for j in 0..<g.outWidth {
                        var sum: T = b?[o] ?? 0
                        for c in 0..<g.inChannels {
                            for p in 0..<g.kernelHeight {
                                let row = i * g.stride - g.paddingHeight + p
                                if row < 0 || row >= g.inHeight { continue }
                                for q in 0..<g.kernelWidth {
                                    let column = j * g.stride - g.paddingWidth + q
                                    if column < 0 || column >= g.inWidth { continue }
                                    let xIndex = ((n * g.inChannels + c) * g.inHeight + row) * g.inWidth + column
                                    let wIndex = ((o * g.inChannels + c) * g.kernelHeight + p) * g.kernelWidth + q
                                    sum += x[xIndex] * w[wIndex]
                                }
                            }
                        }
                        y[((n * g.outChannels + o) * g.outHeight + i) * g.outWidth + j] = sum
                    }
                }
            }
        }
    }

    /// dx[n,c,r,t] = Σ over the outputs that read x[n,c,r,t] of dy · w (the transpose of the forward).
    public static func conv2dBackwardData<T: ReferenceScalar>(
        _ g: Conv2DGeometry, dx: UnsafeMutablePointer<T>, dy: UnsafePointer<T>, w: UnsafePointer<T>
    ) {
        dx.initialize(repeating: 0, count: g.batch * g.inChannels * g.inHeight * g.inWidth)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for i in 0..<g.outHeight {
                    for j in 0..<g.outWidth {
                        let gradient = dy[((n * g.outChannels + o) * g.outHeight + i) * g.outWidth + j]
                        for c in 0..<g.inChannels {
                            for p in 0..<g.kernelHeight {
                                let row = i * g.stride - g.paddingHeight + p
                                if row < 0 || row >= g.inHeight { continue }
                                for q in 0..<g.kernelWidth {
                                    let column = j * g.stride - g.paddingWidth + q
                                    if column < 0 || column >= g.inWidth { continue }
                                    let xIndex = ((n * g.inChannels + c) * g.inHeight + row) * g.inWidth + column
                                    let wIndex = ((o * g.inChannels + c) * g.kernelHeight + p) * g.kernelWidth + q
                                    dx[xIndex] += gradient * w[wIndex]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dw[o,c,p,q] = Σ_{n,i,j} dy[n,o,i,j] · x[n,c,i·s−padH+p, j·s−padW+q];  db[o] = Σ_{n,i,j} dy[n,o,i,j].
    public static func conv2dBackwardWeights<T: ReferenceScalar>(
        _ g: Conv2DGeometry, dw: UnsafeMutablePointer<T>, db: UnsafeMutablePointer<T>?,
        dy: UnsafePointer<T>, x: UnsafePointer<T>
    ) {
        dw.initialize(repeating: 0, count: g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth)
        db?.initialize(repeating: 0, count: g.outChannels)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for i in 0..<g.outHeight {
                    for j in 0..<g.outWidth {
                        let gradient = dy[((n * g.outChannels + o) * g.outHeight + i) * g.outWidth + j]
                        db?[o] += gradient
                        for c in 0..<g.inChannels {
                            for p in 0..<g.kernelHeight {
                                let row = i * g.stride - g.paddingHeight + p
                                if row < 0 || row >= g.inHeight { continue }
                                for q in 0..<g.kernelWidth {
                                    let column = j * g.stride - g.paddingWidth + q
                                    if column < 0 || column >= g.inWidth { continue }
                                    let xIndex = ((n * g.inChannels + c) * g.inHeight + row) * g.inWidth + column
                                    let wIndex = ((o * g.inChannels + c) * g.kernelHeight + p) * g.kernelWidth + q
                                    dw[wIndex] += gradient * x[xIndex]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
