#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The element types the reference kernels run in: Float for the engine, Double for gradient checks.
public protocol ReferenceScalar: BinaryFloatingPoint, Sendable {
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    static func hyperbolicTangent(_ x: Self) -> Self
    static func squareRoot(_ x: Self) -> Self
}

extension Float: ReferenceScalar {
    public static func exponential(_ x: Float) -> Float { expf(x) }
    public static func logarithm(_ x: Float) -> Float { logf(x) }
    public static func hyperbolicTangent(_ x: Float) -> Float { tanhf(x) }
    public static func squareRoot(_ x: Float) -> Float { sqrtf(x) }
}

extension Double: ReferenceScalar {
    public static func exponential(_ x: Double) -> Double { Glibc.exp(x) }
    public static func logarithm(_ x: Double) -> Double { Glibc.log(x) }
    public static func hyperbolicTangent(_ x: Double) -> Double { Glibc.tanh(x) }
    public static func squareRoot(_ x: Double) -> Double { x.squareRoot() }
}
