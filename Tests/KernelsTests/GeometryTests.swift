import Kernels
import Testing

@Suite("Kernel arguments are validated before any backend sees them")
struct GeometryTests {
    func conv(stride: Int = 1, padding: Int = 0, kernel: Int = 3, size: Int = 5, channels: Int = 3) throws(ShapeError)
        -> Conv2DGeometry
    {
        try Conv2DGeometry(
            batch: 1, inChannels: channels, outChannels: 2, inHeight: size, inWidth: size,
            kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding)
    }

    @Test func convolutionOutputSizes() throws {
        #expect(try conv(stride: 2, padding: 1, kernel: 4, size: 64).outputShape == [1, 2, 32, 32])
        #expect(try conv(stride: 2, padding: 1, kernel: 3, size: 5).outputShape == [1, 2, 3, 3])
        #expect(try conv(stride: 1, padding: 0, kernel: 1, size: 5).outputShape == [1, 2, 5, 5])
    }

    @Test func badConvolutionArgumentsNameTheOpAndShapes() {
        #expect(throws: ShapeError.self) { try conv(stride: 0) }
        #expect(throws: ShapeError.self) { try conv(padding: -1) }
        #expect(throws: ShapeError.self) { try conv(padding: 3, kernel: 3) }
        #expect(throws: ShapeError.self) { try conv(kernel: 7, size: 5) }
        #expect(throws: ShapeError.self) { try conv(channels: 0) }
        #expect(
            throws: ShapeError.invalidArguments(
                "conv2d", "stride must be positive: input (1, 3, 5, 5), weight (2, 3, 3, 3), stride 0, padding 0")
        ) { try conv(stride: 0) }
    }

    @Test func otherGeometries() throws {
        #expect(throws: ShapeError.self) { try BatchNormGeometry(batch: 0, channels: 3, spatial: 4, epsilon: 1e-5) }
        #expect(throws: ShapeError.self) { try BatchNormGeometry(batch: 2, channels: 3, spatial: 4, epsilon: 0) }
        #expect(throws: ShapeError.self) { try MatmulGeometry(batchA: 2, batchB: 3, m: 1, n: 1, k: 1) }
        #expect(throws: ShapeError.self) { try MatmulGeometry(batchA: 1, batchB: 1, m: 0, n: 1, k: 1) }
        #expect(throws: ShapeError.self) {
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 5, inWidth: 4, window: 3, stride: 1, padding: 2)
        }
        #expect(throws: ShapeError.self) {
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 2, inWidth: 4, window: 3, stride: 1, padding: 0)
        }
        #expect(throws: ShapeError.self) {
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 4, inWidth: 4, window: 2, stride: 0, padding: 0)
        }
        // Floor mode, as PyTorch and TensorFlow: InceptionV3's 147 → 73 and 35 → 17 pools, a ragged 5x4 input.
        #expect(
            try Pool2DGeometry(batch: 1, channels: 64, inHeight: 147, inWidth: 147, window: 3, stride: 2, padding: 0)
                .outputShape == [1, 64, 73, 73])
        #expect(
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 35, inWidth: 35, window: 3, stride: 2, padding: 0)
                .outputShape == [1, 1, 17, 17])
        #expect(
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 8, inWidth: 8, window: 3, stride: 1, padding: 1)
                .outputShape == [1, 1, 8, 8])
        #expect(
            try Pool2DGeometry(batch: 1, channels: 1, inHeight: 5, inWidth: 4, window: 2).outputShape == [1, 1, 2, 2])
        // Asymmetric convolution padding: 1x7 pads only its columns.
        let g = try Conv2DGeometry(
            batch: 1, inChannels: 2, outChannels: 3, inHeight: 17, inWidth: 17, kernelHeight: 1, kernelWidth: 7,
            stride: 1, paddingHeight: 0, paddingWidth: 3)
        #expect(g.outputShape == [1, 3, 17, 17])
        #expect(g.description.hasSuffix("padding 0x3"))
        #expect(throws: ShapeError.self) {
            try Conv2DGeometry(
                batch: 1, inChannels: 2, outChannels: 3, inHeight: 17, inWidth: 17, kernelHeight: 1, kernelWidth: 7,
                stride: 1, paddingHeight: 1, paddingWidth: 3)
        }
        #expect(ShapeMath.broadcast([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(ShapeMath.broadcast([2, 3], [4]) == nil)
    }
}
