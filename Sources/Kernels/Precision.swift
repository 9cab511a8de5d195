/// The number format of an operation's multiplications, and of the values a tensor holds.
///
/// Under `bf16` the products that dominate a GAN step (convolutions, linear layers, the attention
/// products) read their operands rounded to bfloat16 and accumulate in Float32, and the activations
/// between layers (and the gradients between them) are bf16 values. Weights, their gradients,
/// normalisation statistics, softmax, losses, optimiser state and spectral norm's power iteration stay
/// in Float32 whatever the precision. bf16 keeps Float32's 8-bit exponent, so no loss scaling is
/// needed; it keeps 8 significant bits (7 stored), so one rounding moves a value by at most 2⁻⁹ of
/// itself. Where exactly values are rounded: docs/model.md §9.
public enum Precision: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }
}

/// bfloat16 conversions: the upper 16 bits of a Float32.
public enum BFloat16 {
    /// The largest relative change one rounding to bf16 makes: half a unit in the 8th significant bit.
    public static let unitRoundoff: Float = 1.0 / 512

    /// `x` rounded to the nearest bf16 value, ties to even (what oneDNN's and the CPU's conversions
    /// do). NaN stays NaN; values beyond the largest bf16 become infinite.
    @inlinable
    public static func round(_ x: Float) -> Float {
        let bits = x.bitPattern
        if x.isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return Float(bitPattern: rounded & 0xFFFF_0000)
    }
}
