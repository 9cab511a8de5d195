// Every call into oneDNN (C API v2, Debian 12's libdnnl 2.6.3) lives in this folder, so that a
// port to the v3 API or another vendor library is a local change.
import CDNNL
import CKernels
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Stops with oneDNN's status when a call fails. Arguments are validated before any call, so a
/// failure here is a bug in this file, not bad user input.
func dnnlCheck(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success { fatalError("oneDNN: \(what()) failed with status \(status.rawValue)") }
}

/// Memory descriptors for Float32 data.
enum MemoryDescriptor {
    /// Dense row-major data of the given dimensions (a scalar is treated as one element).
    static func plain(_ dims: [Int]) -> dnnl_memory_desc_t {
        let shape = dims.isEmpty ? [1] : dims
        return strided(shape, ShapeMath.strides(shape))
    }

    static func strided(_ dims: [Int], _ strides: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let dims64 = dims.map(Int64.init)
        let strides64 = strides.map(Int64.init)
        dnnlCheck(
            dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims64, type, strides64),
            "memory descriptor \(dims) strides \(strides)")
        return md
    }

    /// The layout `storage` has as `dims`: its oneDNN layout's, or row-major Float32 without one (as
    /// `OneDNNBackend.usable` hands storages over).
    static func of(_ storage: Storage, as dims: [Int]) -> dnnl_memory_desc_t {
        (storage.layout as? DNNLLayout)?.descriptor(for: dims) ?? plain(dims)
    }

    /// A descriptor that lets the primitive choose its preferred (usually blocked) layout.
    static func any(_ dims: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        tagged(dims, type, dnnl_format_tag_any)
    }

    /// `dims` in the layout oneDNN names `tag` (nChw16c is `dnnl_aBcd16b`, …).
    static func tagged(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        dnnlCheck(
            dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), type, tag),
            "memory descriptor \(dims) (format tag \(tag.rawValue))")
        return md
    }

    /// What a product's operands are read as in `precision`: the primitive converts Float32 inputs.
    static func operandType(_ precision: Precision) -> dnnl_data_type_t {
        precision == .bf16 ? dnnl_bf16 : dnnl_f32
    }
}

/// A primitive created once for one shape. Its arguments come in any layout: row-major, or a
/// oneDNN layout; where that differs from the layout the primitive chose, execution reorders
/// through a temporary buffer (reorder primitives are shared in the runtime).
final class CompiledPrimitive: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    /// What the primitive does ("convolution forward", …).
    let what: String
    /// oneDNN's name for the implementation it chose ("jit_bf16:avx512_core_bf16", "brg:avx512_core", …).
    let implementation: String
    let scratchpad: Scratchpad
    private unowned let runtime: DNNLRuntime

    /// Creates the primitive for `operation` (a pointer to a oneDNN op descriptor).
    init(_ what: String, runtime: DNNLRuntime, operation: UnsafeRawPointer, hint: dnnl_primitive_desc_t? = nil) {
        self.runtime = runtime
        var descriptor: dnnl_primitive_desc_t?
        Scratchpad.withUserMode { attributes in
            dnnlCheck(
                dnnl_primitive_desc_create(&descriptor, operation, attributes, runtime.engine, hint),
                "\(what): primitive descriptor")
        }
        self.descriptor = descriptor!
        scratchpad = Scratchpad(of: descriptor!)
        var primitive: dnnl_primitive_t?
        dnnlCheck(dnnl_primitive_create(&primitive, descriptor), "\(what): primitive")
        self.primitive = primitive!
        self.what = what
        var name: UnsafePointer<CChar>?
        implementation =
            dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success
            ? name.map { String(cString: $0) } ?? "unknown" : "unknown"
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// The layout the primitive reads or writes for `argument`.
    func layout(of argument: Int32) -> dnnl_memory_desc_t? {
        dnnl_primitive_desc_query_md(descriptor, dnnl_query_exec_arg_md, argument)?.pointee
    }

    /// Arguments the primitive writes: they are reordered after it runs, the others before.
    static let outputs: Set<Int32> = [
        DNNL_ARG_DST, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS,
        DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT,
    ]

    /// Runs the primitive; `stream` must be used by one thread at a time.
    func execute(_ stream: dnnl_stream_t, _ arguments: [PrimitiveArgument]) {
        var memories: [dnnl_memory_t] = []
        var temporaries: [(UnsafeMutableRawPointer, Int)] = []
        var execArguments: [dnnl_exec_arg_t] = []
        var outputReorders: [() -> Void] = []
        defer {
            for memory in memories { dnnl_memory_destroy(memory) }
            for (buffer, bytes) in temporaries { BufferPool.shared.release(buffer, bytes: bytes) }
        }
        func memory(_ descriptor: dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer) -> dnnl_memory_t {
            var descriptor = descriptor
            var memory: dnnl_memory_t?
            dnnlCheck(dnnl_memory_create(&memory, &descriptor, runtime.engine, handle), "memory object")
            memories.append(memory!)
            return memory!
        }
        for argument in arguments {
            var given = argument.layout ?? MemoryDescriptor.plain(argument.dims)
            let user = memory(given, UnsafeMutableRawPointer(argument.pointer))
            guard var expected = layout(of: argument.argument), dnnl_memory_desc_equal(&given, &expected) == 0 else {
                execArguments.append(dnnl_exec_arg_t(arg: argument.argument, memory: user))
                continue
            }
            let bytes = max(dnnl_memory_desc_get_size(&expected), 64)
            let buffer = BufferPool.shared.allocate(bytes)
            temporaries.append((buffer, bytes))
            let chosen = memory(expected, buffer)
            execArguments.append(dnnl_exec_arg_t(arg: argument.argument, memory: chosen))
            let isOutput = Self.outputs.contains(argument.argument)
            let (userPointer, chosenPointer) = (argument.pointer, buffer.assumingMemoryBound(to: Float.self))
            if let weights = isOutput
                ? WeightBlocks(from: expected, to: given, dims: argument.dims)
                : WeightBlocks(from: given, to: expected, dims: argument.dims)
            {
                let move = { [runtime] in
                    runtime.forEachItemInParallelLocked(weights.outputBlocks) { block, _, _ in
                        if isOutput {
                            weights.move(chosenPointer, to: userPointer, block: block)
                        } else {
                            weights.move(userPointer, to: chosenPointer, block: block)
                        }
                    }
                }
                if isOutput { outputReorders.append(move) } else { move() }
            } else if isOutput {
                let reorder = runtime.reorder(from: expected, to: given)
                outputReorders.append {
                    reorder.run(
                        stream,
                        [
                            dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: chosen),
                            dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: user),
                        ])
                }
            } else {
                runtime.reorder(from: given, to: expected).run(
                    stream,
                    [
                        dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: user),
                        dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: chosen),
                    ])
            }
        }
        scratchpad.run(primitive, stream, execArguments, runtime.engine)
        dnnlCheck(dnnl_stream_wait(stream), "stream wait")
        for move in outputReorders { move() }
        dnnlCheck(dnnl_stream_wait(stream), "stream wait")
    }

}

/// The scratch memory of one primitive, which we hand it at every execution. oneDNN's default
/// ("library") scratchpad is one buffer per thread that grows when a primitive is *created* on it,
/// but a primitive reads the buffer of the thread that *executes* it: one created on one thread and
/// run on another (our primitives are cached and shared) wrote through a null or short buffer
/// wherever its implementation needs scratch (the gemm convolutions oneDNN picks on AVX2).
struct Scratchpad {
    /// nil when the primitive needs no scratch memory.
    let descriptor: dnnl_memory_desc_t?

    /// The scratchpad `descriptor` (created under `withUserMode`) asks for.
    init(of descriptor: dnnl_primitive_desc_t) {
        guard var needed = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0)?.pointee,
            dnnl_memory_desc_get_size(&needed) > 0
        else {
            self.descriptor = nil
            return
        }
        self.descriptor = needed
    }

    /// Primitive attributes that leave the scratchpad to us.
    static func withUserMode(_ body: (dnnl_primitive_attr_t?) -> Void) {
        var attributes: dnnl_primitive_attr_t?
        dnnlCheck(dnnl_primitive_attr_create(&attributes), "primitive attributes")
        defer { dnnl_primitive_attr_destroy(attributes) }
        dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "scratchpad mode")
        body(attributes)
    }

    /// Executes `primitive` with `arguments` and, when it needs one, a scratchpad from the buffer pool.
    func run(
        _ primitive: dnnl_primitive_t, _ stream: dnnl_stream_t, _ arguments: [dnnl_exec_arg_t], _ engine: dnnl_engine_t
    ) {
        guard var descriptor else {
            dnnlCheck(dnnl_primitive_execute(primitive, stream, Int32(arguments.count), arguments), "execute")
            return
        }
        let bytes = dnnl_memory_desc_get_size(&descriptor)
        let buffer = BufferPool.shared.allocate(bytes)
        var memory: dnnl_memory_t?
        dnnlCheck(dnnl_memory_create(&memory, &descriptor, engine, buffer), "scratchpad memory")
        defer {
            dnnl_memory_destroy(memory)
            BufferPool.shared.release(buffer, bytes: bytes)
        }
        let all = arguments + [dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: memory)]
        dnnlCheck(dnnl_primitive_execute(primitive, stream, Int32(all.count), all), "execute")
        // The buffer goes back to the pool only once the primitive has finished with it.
        dnnlCheck(dnnl_stream_wait(stream), "stream wait")
    }
}

/// A cached reorder primitive and its scratchpad.
final class Reorder: @unchecked Sendable {
    let primitive: dnnl_primitive_t
    let scratchpad: Scratchpad
    private let engine: dnnl_engine_t

    init(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, engine: dnnl_engine_t) {
        var (source, destination) = (from, to)
        var descriptor: dnnl_primitive_desc_t?
        Scratchpad.withUserMode { attributes in
            dnnlCheck(
                dnnl_reorder_primitive_desc_create(&descriptor, &source, engine, &destination, engine, attributes),
                "reorder descriptor")
        }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        scratchpad = Scratchpad(of: descriptor!)
        var primitive: dnnl_primitive_t?
        dnnlCheck(dnnl_primitive_create(&primitive, descriptor), "reorder primitive")
        self.primitive = primitive!
        self.engine = engine
    }

    deinit { dnnl_primitive_destroy(primitive) }

    /// Runs the reorder on `stream` with DNNL_ARG_FROM and DNNL_ARG_TO in `arguments`.
    func run(_ stream: dnnl_stream_t, _ arguments: [dnnl_exec_arg_t]) {
        scratchpad.run(primitive, stream, arguments, engine)
    }
}

/// Convolution weights with 4x4 kernels and channels in whole blocks of 16, moved between
/// row-major and the blocked layouts oneDNN's AVX-512 convolutions use (or between those) by our
/// register transposes with streaming stores, which take about half the time of a oneDNN reorder
/// here: spectral norm hands every convolution a fresh weight each step.
struct WeightBlocks {
    enum Layout: Equatable, CaseIterable {
        case rowMajor
        /// OIhw16i16o ("ABcd16b16a"): output channel fastest, what forward convolutions read.
        case outputFastest
        /// OIhw16o16i ("ABcd16a16b"): input channel fastest, what backward-data convolutions read.
        case inputFastest
        /// bf16 OIhw8i16o2i ("ABcd8b16a2b"): what bf16 forward convolutions read.
        case outputFastestBF16
        /// bf16 OIhw8o16i2o ("ABcd8a16b2a"): what bf16 backward-data convolutions read.
        case inputFastestBF16

        var tag: dnnl_format_tag_t {
            switch self {
            case .rowMajor: dnnl_abcd
            case .outputFastest: dnnl_ABcd16b16a
            case .inputFastest: dnnl_ABcd16a16b
            case .outputFastestBF16: dnnl_ABcd8b16a2b
            case .inputFastestBF16: dnnl_ABcd8a16b2a
            }
        }
        var isBF16: Bool { self == .outputFastestBF16 || self == .inputFastestBF16 }
        var isOutputFastest: Bool { self == .outputFastest || self == .outputFastestBF16 }
    }
    let outputs: Int
    let inputs: Int
    let from: Layout
    let to: Layout
    var outputBlocks: Int { outputs / 16 }

    /// Whether our transposes move weights of these dims: (O, I, 4, 4) with O and I multiples of 16, on AVX-512.
    static func handles(_ dims: [Int]) -> Bool {
        dims.count == 4 && dims[2] * dims[3] == 16 && dims[0] % 16 == 0 && dims[1] % 16 == 0
            && sagan_kernels_use_avx512() != 0
    }

    /// The layout of `descriptor` for `dims`, if it is one of ours and our transposes handle these dims.
    static func layout(_ descriptor: dnnl_memory_desc_t, _ dims: [Int]) -> Layout? {
        guard handles(dims) else { return nil }
        var given = descriptor
        return Layout.allCases.first { layout in
            var candidate = blockedDescriptor(dims, layout)
            return dnnl_memory_desc_equal(&given, &candidate) != 0
        }
    }

    static func blockedDescriptor(_ dims: [Int], _ layout: Layout) -> dnnl_memory_desc_t {
        if layout == .rowMajor { return MemoryDescriptor.plain(dims) }
        return MemoryDescriptor.tagged(dims, layout.isBF16 ? dnnl_bf16 : dnnl_f32, layout.tag)
    }

    /// A move our kernels make: from row-major Float32 to any, from a Float32 blocked layout back to
    /// row-major, and between the two blocked layouts of one element type.
    init?(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, dims: [Int]) {
        guard let source = Self.layout(from, dims), let destination = Self.layout(to, dims), source != destination,
            source == .rowMajor || (destination == .rowMajor ? !source.isBF16 : source.isBF16 == destination.isBF16)
        else { return nil }
        (self.from, self.to, outputs, inputs) = (source, destination, dims[0], dims[1])
    }

    /// Output-channel block `block` (16 output channels) from `source` to `destination` (bf16
    /// layouts hold two elements per Float slot).
    func move(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, block: Int) {
        let (sourceWords, destinationWords) = (
            bf16Pairs(UnsafeMutableRawPointer(mutating: source)), bf16Pairs(destination)
        )
        switch (from, to) {
        case (.rowMajor, _) where to.isBF16:
            sagan_weights_to_blocked16_bf16(
                source, outputs, inputs, to.isOutputFastest ? 1 : 0, 1, destinationWords, block, block + 1)
        case (.rowMajor, _):
            sagan_weights_to_blocked16(
                source, outputs, inputs, to.isOutputFastest ? 1 : 0, 1, destination, block, block + 1)
        case (_, .rowMajor):
            sagan_weights_from_blocked16(
                source, outputs, inputs, from.isOutputFastest ? 1 : 0, destination, block, block + 1)
        case _ where from.isBF16:
            sagan_weights_swap_blocked16_bf16(sourceWords, outputs, inputs, destinationWords, block, block + 1)
        default:
            sagan_weights_swap_blocked16(source, outputs, inputs, destination, block, block + 1)
        }
    }
}

/// One tensor argument of a primitive: its elements, and their oneDNN layout unless row-major.
struct PrimitiveArgument {
    let argument: Int32
    let dims: [Int]
    let pointer: UnsafeMutablePointer<Float>
    let layout: dnnl_memory_desc_t?

    init(_ argument: Int32, _ dims: [Int], _ pointer: UnsafeMutablePointer<Float>, layout: dnnl_memory_desc_t? = nil) {
        (self.argument, self.dims, self.pointer, self.layout) = (argument, dims, pointer, layout)
    }

    /// `storage` as argument, in its oneDNN layout if it has one (`OneDNNBackend.usable` makes sure it fits `dims`).
    init(_ argument: Int32, _ dims: [Int], _ storage: Storage) {
        let descriptor = (storage.layout as? DNNLLayout)?.descriptor(for: dims)
        precondition(
            storage.layout == nil || descriptor != nil, "PrimitiveArgument: a storage in another layout for \(dims)")
        self.init(argument, dims, storage.pointer, layout: descriptor)
    }
}

/// A oneDNN memory layout (usually blocked, nChw16c and the like) that a storage's elements are
/// in: convolutions hand their outputs over in the layout they chose, batch norm and pointwise
/// ops keep it, and other code gets row-major copies on demand.
final class DNNLLayout: OpaqueLayout, @unchecked Sendable {
    let descriptor: dnnl_memory_desc_t
    let dims: [Int]
    let capacity: Int
    /// Whether the layout has slots beyond the elements (channels rounded up to a block).
    let isPadded: Bool
    let key: LayoutKey
    private unowned let runtime: DNNLRuntime

    init(_ descriptor: dnnl_memory_desc_t, dims: [Int], runtime: DNNLRuntime) {
        var copy = descriptor
        self.descriptor = descriptor
        self.dims = dims
        let bytes = dnnl_memory_desc_get_size(&copy)
        capacity = (bytes + 3) / 4
        isPadded = bytes > ShapeMath.count(dims) * (descriptor.data_type == dnnl_bf16 ? 2 : 4)
        key = LayoutKey(descriptor)
        self.runtime = runtime
    }

    func reorderToRowMajor(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>) {
        runtime.convert(
            from: descriptor, UnsafeMutablePointer(mutating: source), to: MemoryDescriptor.plain(dims), destination)
    }

    /// bf16 when the descriptor's elements are 16-bit bfloat16 (then two per Float slot).
    var precision: Precision { descriptor.data_type == dnnl_bf16 ? .bf16 : .fp32 }

    /// This layout with `precision` elements: the same blocking, element strides and padding.
    func with(_ precision: Precision) -> DNNLLayout {
        var changed = descriptor
        changed.data_type = precision == .bf16 ? dnnl_bf16 : dnnl_f32
        return DNNLLayout(changed, dims: dims, runtime: runtime)
    }

    func sameLayout(as other: DNNLLayout) -> Bool { key == other.key }

    /// Whether `other` describes the same memory layout as this one's descriptor.
    func describes(_ other: dnnl_memory_desc_t) -> Bool {
        var (mine, theirs) = (descriptor, other)
        return dnnl_memory_desc_equal(&mine, &theirs) != 0
    }

    /// The descriptor of these elements read as `dims`: this layout's own, or its reshape when a
    /// tensor reshape merged or split unblocked axes ((N, C, H, W) ↔ (N, C, H·W) in nChw16c); nil
    /// when oneDNN cannot describe the memory with those dims.
    func descriptor(for dims: [Int]) -> dnnl_memory_desc_t? {
        if dims == self.dims { return descriptor }
        guard ShapeMath.count(dims) == ShapeMath.count(self.dims) else { return nil }
        var source = descriptor
        var reshaped = dnnl_memory_desc_t()
        guard dnnl_memory_desc_reshape(&reshaped, &source, Int32(dims.count), dims.map(Int64.init)) == dnnl_success
        else { return nil }
        return reshaped
    }

    /// This memory described as `dims` (see `descriptor(for:)`).
    func reshaped(to dims: [Int]) -> DNNLLayout? {
        if dims == self.dims { return self }
        return descriptor(for: dims).map { DNNLLayout($0, dims: dims, runtime: runtime) }
    }

    /// No padding: every slot holds an element (channels fill whole blocks).
    var isDense: Bool { !isPadded }
}

/// The layout an op that keeps its input's layout (batch norm, pointwise) runs in: the inputs'
/// shared dense oneDNN layout, when every input has it and `fits` accepts its dims, else row-major
/// Float32 with `rowMajorDims`. Padded layouts always go row-major: kernels that skip the padding
/// would leave garbage there for the next convolution. A shared bf16 layout makes the op read and
/// write bf16 (docs/model.md §9), unless `bf16` is false.
struct OperandLayout {
    let dims: [Int]
    let descriptor: dnnl_memory_desc_t
    let layout: DNNLLayout?
    var key: LayoutKey? { layout?.key }

    init(_ storages: [Storage], rowMajorDims: [Int], bf16: Bool = true, fits: ([Int]) -> Bool = { _ in true }) {
        // A layout for other dims may still describe these (row-major bf16 from a product, reshaped).
        let given = storages.first?.layout as? DNNLLayout
        if let first = given.flatMap({ fits($0.dims) ? $0 : $0.reshaped(to: rowMajorDims) }), first.isDense,
            bf16 || first.precision == .fp32,
            storages.allSatisfy({
                ($0.layout as? DNNLLayout)?.descriptor(for: first.dims).map(first.describes) == true
            })
        {
            (dims, descriptor, layout) = (first.dims, first.descriptor, first)
        } else {
            (dims, descriptor, layout) = (rowMajorDims, MemoryDescriptor.plain(rowMajorDims), nil)
        }
    }

    /// `storage` in this layout.
    func fitted(_ storage: Storage) -> Storage { layout == nil ? storage.onHost() : storage }

    /// An output of `count` elements in this layout.
    func output(count: Int) -> Storage {
        layout.map { Storage(count: count, layout: $0) } ?? Storage(uninitializedCount: count)
    }
}

/// A memory descriptor's bytes: equal layouts made the same way have equal keys (a key mismatch
/// between equal layouts only costs an extra cached primitive).
struct LayoutKey: Hashable {
    let bytes: [UInt8]
    init(_ descriptor: dnnl_memory_desc_t) {
        var copy = descriptor
        bytes = withUnsafeBytes(of: &copy) { Array($0) }
    }
}

/// The oneDNN engine and stream, and the primitives created so far, keyed by operation and shape.
final class DNNLRuntime: @unchecked Sendable {
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    private let cache = Mutex<[PrimitiveKey: CompiledPrimitive]>([:])
    /// Serialises execution: one stream, and oneDNN parallelises inside each primitive.
    let executionLock = Mutex<Void>(())

    init?() {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else {
            dnnl_engine_destroy(engine)
            return nil
        }
        self.engine = engine
        self.stream = stream
    }

    /// The primitive for `key`, created by `make` on first use.
    func primitive(_ key: PrimitiveKey, _ make: () -> CompiledPrimitive) -> CompiledPrimitive {
        if let found = cache.withLock({ $0[key] }) { return found }
        let created = make()
        return cache.withLock { cache in
            if let raced = cache[key] { return raced }
            cache[key] = created
            return created
        }
    }

    var cachedPrimitiveCount: Int { cache.withLock { $0.count } }

    /// The primitives created so far.
    var cachedPrimitives: [CompiledPrimitive] { cache.withLock { Array($0.values) } }

    /// Our own kernels run so far (the fused attention), as kind → implementation → shapes.
    private let ownKernels = Mutex<[String: [String: Set<String>]]>([:])

    /// Notes that `kind` ran `implementation` for `shape`, for `kernelImplementations`.
    func noteKernel(_ kind: String, _ implementation: String, shape: String) {
        ownKernels.withLock { _ = $0[kind, default: [:]][implementation, default: []].insert(shape) }
    }

    /// How many shapes each of our own kernels ran, by kind.
    var ownKernelShapes: [String: [String: Int]] {
        ownKernels.withLock { $0.mapValues { $0.mapValues(\.count) } }
    }

    /// Sets the OpenMP thread count of Debian's oneDNN build. OpenMP reads OMP_NUM_THREADS when the
    /// library loads, so a later setenv has no effect; libgomp's own call, found at run time
    /// (oneDNN has already loaded it), does. Returns false when no OpenMP runtime is loaded.
    static func setThreadCount(_ count: Int) -> Bool {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") else { return false }
        typealias SetThreads = @convention(c) (Int32) -> Void
        unsafeBitCast(symbol, to: SetThreads.self)(Int32(count))
        return true
    }

    /// `body`'s result with oneDNN's thread count at one. A primitive created so sizes its work for one
    /// thread; some of oneDNN's kernels (backward-weights convolutions) wait at barriers for the threads
    /// they were created for, so inside `forEachItemInParallel`, where each call runs on its calling
    /// thread alone, only such a primitive may run.
    static func withOneThread<Result>(_ body: () -> Result) -> Result {
        let previous = threadCount
        guard let previous, previous > 1, setThreadCount(1) else { return body() }
        defer { _ = setThreadCount(previous) }
        return body()
    }

    /// The OpenMP thread count oneDNN will use, if an OpenMP runtime is loaded.
    static var threadCount: Int? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_get_max_threads") else { return nil }
        typealias GetThreads = @convention(c) () -> Int32
        return Int(unsafeBitCast(symbol, to: GetThreads.self)())
    }

    func execute(_ compiled: CompiledPrimitive, _ arguments: [PrimitiveArgument]) {
        executionLock.withLock { _ in compiled.execute(stream, arguments) }
    }

    /// Reorder primitives by layouts.
    private let reorders = Mutex<[ReorderKey: Reorder]>([:])

    private struct ReorderKey: Hashable {
        let from: LayoutKey
        let to: LayoutKey
    }

    /// The reorder primitive between two layouts of the same dims, created on first use and kept.
    func reorder(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t) -> Reorder {
        let key = ReorderKey(from: LayoutKey(from), to: LayoutKey(to))
        if let found = reorders.withLock({ $0[key] }) { return found }
        let created = Reorder(from: from, to: to, engine: engine)
        return reorders.withLock { cache in
            if let raced = cache[key] { return raced }
            cache[key] = created
            return created
        }
    }

    /// Copies `source` in layout `from` to `destination` in layout `to`.
    func convert(
        from: dnnl_memory_desc_t, _ source: UnsafeMutablePointer<Float>, to: dnnl_memory_desc_t,
        _ destination: UnsafeMutablePointer<Float>
    ) {
        executionLock.withLock { _ in convert(from: from, source, to: to, destination, on: stream) }
    }

    /// `convert` on a given stream, without taking the execution lock (inside `forEachItemInParallel`).
    func convert(
        from: dnnl_memory_desc_t, _ source: UnsafeMutablePointer<Float>, to: dnnl_memory_desc_t,
        _ destination: UnsafeMutablePointer<Float>,
        on stream: dnnl_stream_t
    ) {
        let reorder = reorder(from: from, to: to)
        var (fromDescriptor, toDescriptor) = (from, to)
        var input: dnnl_memory_t?
        var output: dnnl_memory_t?
        dnnlCheck(dnnl_memory_create(&input, &fromDescriptor, engine, UnsafeMutableRawPointer(source)), "memory object")
        dnnlCheck(
            dnnl_memory_create(&output, &toDescriptor, engine, UnsafeMutableRawPointer(destination)), "memory object")
        defer {
            dnnl_memory_destroy(input)
            dnnl_memory_destroy(output)
        }
        reorder.run(
            stream,
            [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: input), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: output)])
        dnnlCheck(dnnl_stream_wait(stream), "stream wait")
    }

    /// A storage for `dims` elements in `layout` (row-major when the layout is row-major).
    func storage(_ dims: [Int], layout: dnnl_memory_desc_t?) -> Storage {
        guard let chosen = self.layout(dims, layout) else { return Storage(uninitializedCount: ShapeMath.count(dims)) }
        return Storage(count: ShapeMath.count(dims), layout: chosen)
    }

    /// `descriptor` as the layout of `dims` elements; nil when it is row-major (or nil).
    func layout(_ dims: [Int], _ descriptor: dnnl_memory_desc_t?) -> DNNLLayout? {
        guard var chosen = descriptor else { return nil }
        var plain = MemoryDescriptor.plain(dims)
        if dnnl_memory_desc_equal(&chosen, &plain) != 0 { return nil }
        return DNNLLayout(chosen, dims: dims, runtime: self)
    }
}

/// What identifies a cached primitive: the operation and every shape and setting it was created for.
enum PrimitiveKey: Hashable {
    case convolutionForward(Conv2DGeometry, bias: Bool)
    case convolutionBackwardData(Conv2DGeometry)
    /// One of the four stride-1 convolutions a backward-data convolution splits into (OneDNNPhaseBackwardData).
    case convolutionPhase(Conv2DGeometry, phase: Int)
    /// `singleThreaded`: created for one thread, to run inside `forEachItemInParallel`.
    case convolutionBackwardWeights(Conv2DGeometry, bias: Bool, singleThreaded: Bool = false)
    case batchNormForward(BatchNormGeometry, training: Bool, scale: Bool, shift: Bool, layout: LayoutKey?)
    case batchNormBackward(BatchNormGeometry, scale: Bool, shift: Bool, parameters: Bool, layout: LayoutKey?)
    case eltwiseForward(UnaryOperation, count: Int, layout: LayoutKey?)
    case eltwiseBackward(UnaryOperation, count: Int, layout: LayoutKey?)
    case binary(BinaryOperation, a: [Int], b: [Int], layout: LayoutKey?)
    case reduction(ReductionOperation, shape: [Int], output: [Int], bf16Source: Bool)
    case softmaxForward(rows: Int, columns: Int)
    case softmaxBackward(rows: Int, columns: Int)
    case matmul(MatmulGeometry)
    case pooling(PoolOperation, Pool2DGeometry, layout: LayoutKey?)
}

/// Runs independent pieces of work (images of a batch) on OpenMP's threads, each running oneDNN
/// single-threaded. For small products (attention tiles) this scales where oneDNN's own threads
/// inside each call do not: a 128×1024×8 product is too short to share.
extension DNNLRuntime {
    func forEachItemInParallel(_ count: Int, _ body: (_ item: Int, _ worker: Int, _ stream: dnnl_stream_t) -> Void) {
        executionLock.withLock { _ in forEachItemInParallelLocked(count, body) }
    }

    /// `forEachItemInParallel` for a caller that already holds the execution lock (a primitive's execution).
    func forEachItemInParallelLocked(
        _ count: Int, _ body: (_ item: Int, _ worker: Int, _ stream: dnnl_stream_t) -> Void
    ) {
        do {
            if OpenMP.inParallel?() ?? 0 != 0 {
                // Called from a worker (a primitive run by `forEachItemInParallel`): a nested region
                // would have one thread, so run every item here, on a stream of this thread's own.
                var stream: dnnl_stream_t?
                dnnlCheck(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "nested stream")
                defer { dnnl_stream_destroy(stream) }
                for item in 0..<count { body(item, 0, stream!) }
                return
            }
            let workers = min(count, Self.threadCount ?? 1)
            guard workers > 1, let parallel = OpenMP.parallel, let threadNumber = OpenMP.threadNumber else {
                for item in 0..<count { body(item, 0, stream) }
                return
            }
            withoutActuallyEscaping(body) { body in
                final class Region {
                    let body: (Int, Int, dnnl_stream_t) -> Void
                    let engine: dnnl_engine_t, count: Int, workers: Int, threadNumber: @convention(c) () -> Int32
                    init(
                        _ body: @escaping (Int, Int, dnnl_stream_t) -> Void, _ engine: dnnl_engine_t, _ count: Int,
                        _ workers: Int,
                        _ threadNumber: @escaping @convention(c) () -> Int32
                    ) {
                        (self.body, self.engine, self.count, self.workers, self.threadNumber) = (
                            body, engine, count, workers, threadNumber
                        )
                    }
                }
                let region = Region(body, engine, count, workers, threadNumber)
                withExtendedLifetime(region) {
                    // Inside a parallel region oneDNN runs each call on the calling thread only.
                    parallel(
                        { context in
                            let region = Unmanaged<Region>.fromOpaque(context!).takeUnretainedValue()
                            let worker = Int(region.threadNumber())
                            var stream: dnnl_stream_t?
                            dnnlCheck(
                                dnnl_stream_create(&stream, region.engine, dnnl_stream_default_flags.rawValue),
                                "worker stream")
                            defer { dnnl_stream_destroy(stream) }
                            for item in stride(from: worker, to: region.count, by: region.workers) {
                                region.body(item, worker, stream!)
                            }
                        }, Unmanaged.passUnretained(region).toOpaque(), UInt32(workers), 0)
                }
            }
        }
    }
}

/// libgomp's entry points, found at run time in the runtime Debian's oneDNN loaded.
enum OpenMP {
    typealias Parallel =
        @convention(c) (@convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?, UInt32, UInt32) ->
        Void
    /// What the compiler emits for `#pragma omp parallel num_threads(n)`: runs fn(data) on n threads.
    static let parallel: Parallel? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "GOMP_parallel").map {
        unsafeBitCast($0, to: Parallel.self)
    }
    static let threadNumber: (@convention(c) () -> Int32)? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "omp_get_thread_num"
    )
    .map { unsafeBitCast($0, to: (@convention(c) () -> Int32).self) }
    static let inParallel: (@convention(c) () -> Int32)? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "omp_in_parallel"
    )
    .map { unsafeBitCast($0, to: (@convention(c) () -> Int32).self) }
}
