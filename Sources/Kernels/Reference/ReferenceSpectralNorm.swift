extension ReferenceKernels {
    /// `Backend.spectralNorm` with every sum in Double: writes W/σ, the u and v that σ used, and
    /// returns σ. W[o, c] of the (outputs, blocks·inner) matrix is weight[(b·outputs + o)·inner + j]
    /// for the column c = b·inner + j.
    public static func spectralNorm<T: ReferenceScalar>(
        _ g: SpectralNormGeometry, normalizedOut: UnsafeMutablePointer<T>, uOut: UnsafeMutablePointer<T>,
        vOut: UnsafeMutablePointer<T>,
        weight: UnsafePointer<T>, u: UnsafePointer<T>, v: UnsafePointer<T>, powerIteration: Bool
    ) -> T {
        let (outputs, inner) = (g.outputs, g.inner)
        func element(_ o: Int, _ column: Int) -> Double {
            Double(weight[(column / inner * outputs + o) * inner + column % inner])
        }
        /// W x for x of `rightCount` elements.
        func product(_ x: UnsafePointer<T>) -> [Double] {
            (0..<outputs).map { o in (0..<g.rightCount).reduce(0.0) { $0 + element(o, $1) * Double(x[$1]) } }
        }
        func normalizer(_ x: [Double]) -> Double { x.reduce(0.0) { $0 + $1 * $1 }.squareRoot() + Double(g.epsilon) }
        if powerIteration {
            let transposedProduct = (0..<g.rightCount).map { c in
                (0..<outputs).reduce(0.0) { $0 + element($1, c) * Double(u[$1]) }
            }
            let vNorm = normalizer(transposedProduct)
            for c in 0..<g.rightCount { vOut[c] = T(transposedProduct[c] / vNorm) }
            let forwardProduct = product(vOut)
            let uNorm = normalizer(forwardProduct)
            for o in 0..<outputs { uOut[o] = T(forwardProduct[o] / uNorm) }
        } else {
            uOut.update(from: u, count: outputs)
            vOut.update(from: v, count: g.rightCount)
        }
        let forwardProduct = product(vOut)
        let sigma = T((0..<outputs).reduce(0.0) { $0 + Double(uOut[$1]) * forwardProduct[$1] })
        for i in 0..<g.count { normalizedOut[i] = weight[i] / sigma }
        return sigma
    }

    /// `Backend.spectralNormBackward` with the inner product in Double.
    public static func spectralNormBackward<T: ReferenceScalar>(
        _ g: SpectralNormGeometry, weightGradientOut: UnsafeMutablePointer<T>, weight: UnsafePointer<T>,
        outputGradient: UnsafePointer<T>, u: UnsafePointer<T>, v: UnsafePointer<T>, sigma: T
    ) {
        let lambda = (0..<g.count).reduce(0.0) { $0 + Double(outputGradient[$1]) * Double(weight[$1]) } / Double(sigma)
        for block in 0..<g.blocks {
            for o in 0..<g.outputs {
                for j in 0..<g.inner {
                    let i = (block * g.outputs + o) * g.inner + j
                    let projection = lambda * Double(u[o]) * Double(v[block * g.inner + j])
                    weightGradientOut[i] = T((Double(outputGradient[i]) - projection) / Double(sigma))
                }
            }
        }
    }
}
