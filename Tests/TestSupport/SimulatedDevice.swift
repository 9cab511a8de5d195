import Kernels
import Synchronization

/// A stand-in for an accelerator, to prove the engine is ready for one: its storages live in memory
/// the host cannot address (`Storage.pointer` stops the process), kept scrambled so that bytes read
/// any other way would be garbage. Its eight primitives copy the operands to the host, run the
/// reference kernels and copy the results back; everything else is the inherited defaults. Results
/// bit-identical to the reference backend mean that nothing above the kernels reaches device memory
/// except through `Storage.onHost()`.
public final class SimulatedDeviceBackend: Backend {
    public static let backendID: BackendID = "simulated-device"

    /// The one instance, registered (below the reference, so never the default) on first use.
    public static let shared: SimulatedDeviceBackend = {
        let backend = SimulatedDeviceBackend()
        do { try BackendRegistry.register(backend, preference: -1) } catch { fatalError("\(error)") }
        return backend
    }()

    public var id: BackendID { Self.backendID }
    public let device = Device("simulated")
    private let host = ReferenceBackend()
    private let transfers = Atomic<Int>(0)

    private init() {}

    /// Copies made onto the device so far (results of primitives and of derived operations).
    public var copiesToDevice: Int { transfers.load(ordering: .relaxed) }

    public func fromHost(_ storage: Storage) -> Storage {
        if storage.device == device { return storage }
        transfers.add(1, ordering: .relaxed)
        let plain = storage.onHost()
        return Storage(
            count: plain.count, deviceMemory: ScrambledMemory(plain, device: device), precision: plain.precision)
    }

    public func conv2dForward(_ g: Conv2DGeometry, input: Storage, weight: Storage, bias: Storage?) -> Storage {
        fromHost(host.conv2dForward(g, input: input, weight: weight, bias: bias))
    }
    public func conv2dBackwardData(_ g: Conv2DGeometry, outputGradient: Storage, weight: Storage) -> Storage {
        fromHost(host.conv2dBackwardData(g, outputGradient: outputGradient, weight: weight))
    }
    public func conv2dBackwardWeights(_ g: Conv2DGeometry, outputGradient: Storage, input: Storage, withBias: Bool)
        -> (weight: Storage, bias: Storage?)
    {
        let (weight, bias) = host.conv2dBackwardWeights(
            g, outputGradient: outputGradient, input: input, withBias: withBias)
        return (fromHost(weight), bias.map(fromHost))
    }
    public func matmul(_ g: MatmulGeometry, _ a: Storage, _ b: Storage) -> Storage { fromHost(host.matmul(g, a, b)) }
    public func unary(_ op: UnaryOperation, _ x: Storage) -> Storage { fromHost(host.unary(op, x)) }
    public func unaryBackward(_ op: UnaryOperation, input: Storage, output: Storage, outputGradient: Storage) -> Storage
    {
        fromHost(host.unaryBackward(op, input: input, output: output, outputGradient: outputGradient))
    }
    public func binary(
        _ op: BinaryOperation, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outputShape: [Int]
    ) -> Storage {
        fromHost(host.binary(op, a, aShape, b, bShape, outputShape: outputShape))
    }
    public func reduce(_ op: ReductionOperation, _ x: Storage, shape: [Int], outputShape: [Int]) -> Storage {
        fromHost(host.reduce(op, x, shape: shape, outputShape: outputShape))
    }
}

/// Device memory of the simulated device: the elements' bits, scrambled.
private final class ScrambledMemory: DeviceMemory {
    let device: Device
    private let words: [UInt32]
    private static let mask: UInt32 = 0x5A5A_5A5A

    init(_ plain: Storage, device: Device) {
        self.device = device
        words = UnsafeBufferPointer(start: plain.pointer, count: plain.count).map { $0.bitPattern ^ Self.mask }
    }

    func copyToHost(_ destination: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count == words.count, "ScrambledMemory: \(count) elements asked of \(words.count)")
        for index in 0..<count { destination[index] = Float(bitPattern: words[index] ^ Self.mask) }
    }
}

/// The backends tests run on: every one registered here, and the simulated device (registered by
/// this call, so that the list does not depend on which test ran first).
public var backendsUnderTest: [any Backend] {
    _ = SimulatedDeviceBackend.shared
    return BackendRegistry.available
}
