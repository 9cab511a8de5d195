import FileFormats
import Foundation
import GAN
import TestSupport
import Testing

/// Data-parallel training as users run it: `mpirun -np 2 sagan train` (Debian's Open MPI, which
/// `make test` installs), compared with `sagan train` in one process.
@Suite("sagan train under mpirun", .serialized, .tags(.slow), .skippedInFastRuns)
struct DistributedTrainingTests {
    /// As root, mpirun runs only when told twice; two ranks on two cores need --oversubscribe
    /// when the machine reports fewer slots.
    static let environment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
    static let mpirun = ["/usr/bin/mpirun", "--oversubscribe"]

    static func ranks(_ count: Int, _ arguments: [String]) throws -> SaganProcess.Outcome {
        try SaganProcess.sagan(arguments, environment: environment, launcher: mpirun + ["-np", "\(count)"])
    }

    static func single(_ arguments: [String]) throws -> SaganProcess.Outcome {
        try SaganProcess.sagan(arguments)
    }

    /// A small tiny32 (base width 128, attention at 16x16 in G and D, BN in G) on 40 blob images.
    struct Setup {
        let work: URL
        let common: [String]

        init(_ name: String) throws {
            work = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let dataset = try makeBlobPack(work, count: 40)
            let config = try writeSmallConfigFile(in: work)
            common = [
                "train", "--data", dataset.url.path, "--config", config.path, "--batch", "8", "--checkpoint-every", "1",
                "--keep", "10", "--sample-every", "100", "--log-every", "1",
            ]
        }

        func run(_ name: String) -> URL { work.appendingPathComponent(name) }

        func checkpoint(_ run: String, step: Int) throws -> SafeTensorsFile {
            try SafeTensorsFile(
                contentsOf: work.appendingPathComponent(run).appendingPathComponent(
                    String(format: "checkpoints/step-%06d.safetensors", step)))
        }
    }

    /// What two training states that took the same `steps` steps in different summation orders (2
    /// ranks against 1 process, or another thread count) may differ by, and what they differ by.
    ///
    /// Parameters are compared element by element in units of their network's learning rate. Adam
    /// with β₁ = 0 moves an element by lr·g/√v̂: by ±lr on its first step whatever the gradient's
    /// size, and by at most lr·√(1/(1 − β₂)) later. A gradient element within rounding of zero may
    /// take opposite signs in two summation orders; that element then moves 2·lr apart, and a small
    /// bias vector shows it as a 1% relative difference (seen on an AVX-512 EPYC: D.blocks.0.conv.bias
    /// 0.0114 after 6 steps, while the gradients of step 1 agreed to 1.6e-6). From there a GAN at
    /// batch 8 amplifies the difference: here (tiny32, Fashion-MNIST, seed 5) the two agree to 1e-5
    /// through step 2, 8 elements are over half a learning rate apart at step 3, 6,019 at step 6 (at
    /// most 5.9 rates apart), and the last gradients (Adam's moments) differ by 12%. So each
    /// parameter element may differ by at most 2·√(1/(1 − β₂))·lr per step; the moments are checked
    /// where they are the gradients of the same parameters, on the first step
    /// (`expectSameGradients`), not after; the buffers (batch-norm statistics, spectral-norm vectors,
    /// G-EMA) follow the parameters smoothly, per tensor ‖a − b‖/‖b‖ ≤ 1e-2 (7e-4 at step 6 here).
    /// The attention's key bias f.bias has a zero gradient (softmax over keys ignores a term that is
    /// the same for every key), so it holds only rounding noise, compared absolutely (‖a − b‖ ≤ 1e-6)
    /// and listed in `noise`.
    @discardableResult
    static func expectSameTraining(
        _ a: SafeTensorsFile, _ b: SafeTensorsFile, steps: Int
    ) throws -> (worstRelative: Double, worstInRates: Double, tensors: Int, noise: [String]) {
        let beta2 = try TrainingCheckpoint.config(of: b, source: "checkpoint").beta2
        let perStep = 2 * (1 / (1 - Double(beta2))).squareRoot()
        var (worstRelative, worstInRates, tensors, noise) = (0.0, 0.0, 0, [String]())
        for name in b.names.sorted() {
            let (x, y) = (try a.f32Scalars(name), try b.f32Scalars(name))
            #expect(x.count == y.count, "\(name)")
            let network = name.prefix { $0 != "." }
            let rest = name.drop { $0 != "." }
            if name.hasPrefix("opt_") { continue }
            if network == "G" || network == "D", b.names.contains("opt_\(network).m\(rest)"),
                !name.hasSuffix(".f.bias"),
                let bits = b.metadata["opt_\(network).lr"].flatMap(UInt32.init)
            {
                let rate = Double(Float(bitPattern: bits))
                let largest = zip(x, y).reduce(0.0) { max($0, Double(Swift.abs($1.0 - $1.1))) } / rate
                #expect(
                    largest <= perStep * Double(steps),
                    "\(name): elements \(largest) learning rates apart after \(steps) steps")
                worstInRates = max(worstInRates, largest)
            } else {
                let difference = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
                let norm = y.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
                if name.hasSuffix(".f.bias") {
                    #expect(difference <= 1e-6, "\(name): ‖a − b‖ = \(difference), ‖b‖ = \(norm)")
                    noise.append(name)
                } else {
                    let ratio = norm > 0 ? difference / norm : difference
                    #expect(ratio <= 1e-2, "\(name): ‖a − b‖/‖b‖ = \(ratio)")
                    worstRelative = max(worstRelative, ratio)
                }
            }
            tensors += 1
        }
        return (worstRelative, worstInRates, tensors, noise)
    }

    /// The gradients of one step (Adam's first moment is the gradient when β₁ = 0): per tensor
    /// ‖a − b‖/‖b‖ ≤ 1e-5, the zero-gradient key biases absolutely. Returns the worst and the count.
    @discardableResult
    static func expectSameGradients(_ a: SafeTensorsFile, _ b: SafeTensorsFile) throws -> (worst: Double, tensors: Int)
    {
        var (worst, tensors) = (0.0, 0)
        for name in b.names.sorted() where name.hasPrefix("opt_G.m.") || name.hasPrefix("opt_D.m.") {
            let (x, y) = (try a.f32Scalars(name), try b.f32Scalars(name))
            let difference = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            let norm = y.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            if name.hasSuffix(".f.bias") {
                #expect(difference <= 1e-6, "\(name): ‖a − b‖ = \(difference)")
            } else {
                let ratio = norm > 0 ? difference / norm : difference
                #expect(ratio <= 1e-5, "\(name): ‖a − b‖/‖b‖ = \(ratio)")
                worst = max(worst, ratio)
            }
            tensors += 1
        }
        return (worst, tensors)
    }

    /// 2 ranks × 4 images against 1 process × 8 (sync BN): after one step every gradient agrees
    /// within 1e-5; after three steps the whole state as `expectSameTraining` allows.
    @Test func twoRanksTakeTheSingleProcessSteps() throws {
        let setup = try Setup("mpi-equal")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let one = try Self.single(setup.common + ["--steps", "3", "--run-dir", setup.run("one").path])
        #expect(one.status == 0, "\(one.output)")
        let two = try Self.ranks(2, setup.common + ["--steps", "3", "--run-dir", setup.run("two").path])
        #expect(two.status == 0, "\(two.output)")
        #expect(two.output.contains("on 2 ranks (4 images each)"), "\(two.output)")
        let gradients = try Self.expectSameGradients(
            try setup.checkpoint("two", step: 1), try setup.checkpoint("one", step: 1))
        #expect(gradients.tensors > 20)
        let state = try Self.expectSameTraining(
            try setup.checkpoint("two", step: 3), try setup.checkpoint("one", step: 3), steps: 3)
        print(
            "2 ranks vs 1 process: step 1 gradients of \(gradients.tensors) tensors, worst relative "
                + "\(gradients.worst); step 3 state of \(state.tensors) tensors, parameters at most "
                + "\(state.worstInRates) learning rates apart, buffers worst relative \(state.worstRelative); "
                + "compared absolutely (zero gradient): \(state.noise.joined(separator: ", "))")
        let info = try JSONValue(parsing: Data(contentsOf: setup.run("two").appendingPathComponent("run.json")))
        #expect(info["world_size"]?.int == 2)
    }

    /// Checkpoints do not depend on the world size: 2 ranks then 1 process, and 1 process then 2
    /// ranks, each end where 4 uninterrupted single-process steps end.
    @Test func aRunResumesOnAnotherNumberOfRanks() throws {
        let setup = try Setup("mpi-resume")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let straight = try Self.single(setup.common + ["--steps", "4", "--run-dir", setup.run("straight").path])
        #expect(straight.status == 0, "\(straight.output)")
        for (name, first, second) in [("two-then-one", 2, 1), ("one-then-two", 1, 2)] {
            let folder = setup.run(name).path
            let start = try Self.launch(first, setup.common + ["--steps", "2", "--run-dir", folder])
            #expect(start.status == 0, "\(name): \(start.output)")
            let resumed = try Self.launch(
                second, setup.common + ["--steps", "4", "--run-dir", folder, "--resume", "auto"])
            #expect(resumed.status == 0, "\(name): \(resumed.output)")
            #expect(resumed.output.contains("at step 2"), "\(name): \(resumed.output)")
            try Self.expectSameTraining(
                try setup.checkpoint(name, step: 4), try setup.checkpoint("straight", step: 4), steps: 4)
        }
    }

    static func launch(_ ranks: Int, _ arguments: [String]) throws -> SaganProcess.Outcome {
        ranks == 1 ? try single(arguments) : try Self.ranks(ranks, arguments)
    }

    /// Rank 1 is given its own run folder (mpirun's MPMD form): it must stay unmade, while rank 0's
    /// holds everything.
    @Test func onlyRankZeroWritesFiles() throws {
        let setup = try Setup("mpi-writes")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let (zero, one) = (setup.run("rank0"), setup.run("rank1"))
        // mpirun -np 1 sagan ARGUMENTS-0 : -np 1 sagan ARGUMENTS-1
        let arguments =
            setup.common + ["--steps", "2", "--run-dir", zero.path, ":", "-np", "1", SaganProcess.executable.path]
            + setup.common + ["--steps", "2", "--run-dir", one.path]
        let outcome = try SaganProcess.sagan(
            arguments, environment: Self.environment, launcher: Self.mpirun + ["-np", "1"])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(!FileManager.default.fileExists(atPath: one.path), "rank 1 wrote \(one.path)")
        let written = try FileManager.default.contentsOfDirectory(atPath: zero.path)
        #expect(written.contains("run.json") && written.contains("metrics.jsonl") && written.contains("checkpoints"))
    }

    /// Resuming needs the run folder on rank 0's machine only: rank 1 is pointed at a folder that
    /// does not exist (as on another machine without the run), gets rank 0's checkpoint, and the
    /// run ends where 4 uninterrupted steps end.
    @Test func aResumeNeedsTheRunFolderOnRankZeroOnly() throws {
        let setup = try Setup("mpi-resume-elsewhere")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let straight = try Self.single(setup.common + ["--steps", "4", "--run-dir", setup.run("straight").path])
        #expect(straight.status == 0, "\(straight.output)")
        let (zero, elsewhere) = (setup.run("run"), setup.run("elsewhere"))
        let start = try Self.ranks(2, setup.common + ["--steps", "2", "--run-dir", zero.path])
        #expect(start.status == 0, "\(start.output)")
        let resume = ["--steps", "4", "--resume", "auto", "--run-dir"]
        let arguments =
            setup.common + resume + [zero.path, ":", "-np", "1", SaganProcess.executable.path] + setup.common
            + resume + [elsewhere.path]
        let resumed = try SaganProcess.sagan(
            arguments, environment: Self.environment, launcher: Self.mpirun + ["-np", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("at step 2"), "\(resumed.output)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere.path))
        try Self.expectSameTraining(
            try setup.checkpoint("run", step: 4), try setup.checkpoint("straight", step: 4), steps: 4)
    }

    /// The process of `rank` whose command line mentions `folder`, found through /proc.
    static func rankProcess(_ rank: Int, runningIn folder: URL) -> Int32? {
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in processes.compactMap(Int32.init) {
            guard let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                String(decoding: commandLine, as: UTF8.self).contains(folder.path),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    /// kill -9 of rank 1 mid-run: mpirun ends the job within seconds, names the lost rank, and every
    /// checkpoint rank 0 wrote stays readable.
    @Test func aKilledRankEndsTheJob() throws {
        let setup = try Setup("mpi-kill")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let run = setup.run("run")
        let start = Date()
        let outcome = try SaganProcess.sagan(
            setup.common + ["--steps", "100000", "--run-dir", run.path, "--checkpoint-every", "2"],
            signal: (SIGKILL, .file(run.appendingPathComponent("checkpoints/step-000006.safetensors"))),
            environment: Self.environment, launcher: Self.mpirun + ["-np", "2"],
            signalTarget: { Self.rankProcess(1, runningIn: run) })
        #expect(outcome.status != 0)
        #expect(outcome.output.contains("rank 1"), "\(outcome.output)")
        #expect(Date().timeIntervalSince(start) < 60)
        let checkpoints = RunDirectory.checkpointFiles(in: run.appendingPathComponent("checkpoints"))
        #expect(!checkpoints.isEmpty)
        for file in checkpoints {
            #expect(throws: Never.self) { try SafeTensorsFile(contentsOf: file).verifyChecksum() }
        }
    }

    /// The two clean stops of a distributed run: SIGUSR1 to mpirun (which passes it on to every
    /// rank), and SIGTERM to one rank alone (Slurm's scancel signals the ranks themselves, not
    /// necessarily at the same instant). Either way every rank stops after the same step, rank 0
    /// saves exactly one checkpoint there, and the job exits 0.
    @Test(arguments: [("mpirun", SIGUSR1), ("rank 1", SIGTERM)])
    func aStopSignalSavesOneCheckpoint(target: String, signal: Int32) throws {
        let setup = try Setup("mpi-stop")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let run = setup.run("run")
        let outcome = try SaganProcess.sagan(
            setup.common + ["--steps", "100000", "--run-dir", run.path, "--checkpoint-every", "1000"],
            signal: (signal, .file(run.appendingPathComponent("metrics.jsonl"))), environment: Self.environment,
            launcher: Self.mpirun + ["-np", "2"],
            signalTarget: target == "mpirun" ? nil : { Self.rankProcess(1, runningIn: run) }, timeLimit: 120)
        #expect(outcome.status == 0, "\(target): \(outcome.output)")
        let checkpoints = RunDirectory.checkpointFiles(in: run.appendingPathComponent("checkpoints"))
        #expect(checkpoints.count == 1, "\(target): \(checkpoints)")
        for file in checkpoints {
            #expect(throws: Never.self) { try SafeTensorsFile(contentsOf: file).verifyChecksum() }
        }
        #expect(outcome.output.contains("stopped at step"), "\(target): \(outcome.output)")
    }

    /// `sagan bench allreduce` times every size up to blog128's G + D gradients (6,657,574 floats)
    /// and refuses to run without a launcher; `sagan bench train` under mpirun divides the batch.
    @Test func benchmarksRunOnRanks() throws {
        let allreduce = try Self.ranks(2, ["bench", "allreduce", "--iterations", "2", "--json"])
        #expect(allreduce.status == 0, "\(allreduce.output)")
        let timings = allreduce.output.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        #expect(timings.map { $0["floats"]?.int } == [1, 256, 16_384, 262_144, 1_048_576, 6_657_574])
        #expect(timings.allSatisfy { $0["ranks"]?.int == 2 && ($0["median_seconds"]?.double ?? 0) > 0 })
        let alone = try Self.single(["bench", "allreduce"])
        #expect(alone.status == 64 && alone.output.contains("mpirun -np 2 sagan bench allreduce"), "\(alone.output)")
        let train = try Self.ranks(
            2,
            [
                "bench", "train", "--preset", "tiny32", "--batch", "8", "--iters", "1", "--warmup", "1", "--peak",
                "100",
                "--json",
            ])
        #expect(train.status == 0, "\(train.output)")
        let result = try JSONValue(parsing: train.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(result["ranks"]?.int == 2 && result["batch"]?.int == 8, "\(train.output)")
        #expect((result["ms_collectives"]?.double ?? 0) > 0, "\(train.output)")
        // tiny32: G's and D's gradient allreduces, and per batch norm layer in G one gather per
        // forward (D's step and G's) and one sum per backward (G's step).
        #expect((result["collectives_per_iteration"]?.int ?? 0) > 2, "\(train.output)")
    }

    /// A second `mpirun` on a run folder in use (a new run, or --resume auto) ends every rank with
    /// rank 0's refusal and exit 64 at once; before, rank 1 waited in a collective for ever.
    @Test func aFolderInUseEndsEveryRank() throws {
        let setup = try Setup("mpi-in-use")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let folder = setup.run("busy")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun[0])
        process.arguments =
            Array(Self.mpirun.dropFirst()) + ["-np", "2", SaganProcess.executable.path] + setup.common
            + ["--steps", "100000", "--run-dir", folder.path]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try SaganProcess.spawningWithStopSignalsUnblocked { try process.run() }
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let lock = folder.appendingPathComponent("checkpoints")
        for _ in 0..<600 {
            if FileManager.default.fileExists(atPath: lock.path) { break }
            usleep(50_000)
        }
        for extra in [[], ["--resume", "auto"]] {
            let began = Date()
            let second = try Self.ranks(2, setup.common + ["--steps", "200000", "--run-dir", folder.path] + extra)
            // A new run is refused as the folder holds one; a resume, as the folder is in use.
            let refusal = extra.isEmpty ? "already holds a run" : "is in use by process"
            #expect(second.status == 64 && second.output.contains(refusal), "\(extra): \(second.output)")
            #expect(Date().timeIntervalSince(began) < 60, "\(extra): took \(Date().timeIntervalSince(began)) s")
        }
    }

    @Test func aBatchThatDoesNotDivideIsRefused() throws {
        let setup = try Setup("mpi-batch")
        defer { try? FileManager.default.removeItem(at: setup.work) }
        let outcome = try Self.ranks(
            2, setup.common + ["--steps", "2", "--batch", "9", "--run-dir", setup.run("r").path])
        #expect(outcome.status != 0)
        let message = "--batch 9 does not divide among 2 ranks"
        #expect(outcome.output.components(separatedBy: message).count == 2, "\(outcome.output)")
        #expect(!FileManager.default.fileExists(atPath: setup.run("r").path))
    }
}
