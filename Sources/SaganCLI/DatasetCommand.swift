import ArgumentParser
import Datasets
import Foundation

/// `sagan dataset check|pack`: find what is wrong with a folder of images, and pack it for training.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "Check and pack image datasets.",
        subcommands: [DatasetCheck.self, DatasetPack.self])
}

extension CropPolicy: ExpressibleByArgument {}
extension BadFilePolicy: ExpressibleByArgument {}

struct DatasetCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Report counts, sizes, aspect ratios, modes, unreadable/truncated/zero-byte/mislabelled files and exact "
            + "duplicates."
    )

    @Option(help: "A folder of images (labels from sub-folder names) or an IDX image file (.gz or raw).") var source:
        String
    @Option(help: "List at most this many paths per problem.") var show = 20

    func run() throws {
        var progress = ProgressLine()
        let start = monotonicSeconds()
        let report: CheckReport
        do {
            report = try DatasetDoctor.check(source: source) { done, total in
                progress.update(
                    "checking \(done)/\(total) files  "
                        + "\(String(format: "%.0f", Double(done) / max(monotonicSeconds() - start, 1e-3))) files/s"
                )
            }
        } catch let error as DataError {
            throw ValidationError(error.description)
        }
        progress.finish()
        print(
            "\(source): \(report.files) image files (\(grouped(report.bytes)) bytes), \(report.images) readable, "
                + "\(report.bad.count) bad, \(report.ignored.count) other files ignored"
        )
        func table(_ title: String, _ counts: [String: Int], limit: Int = 10) {
            guard !counts.isEmpty else { return }
            let rows = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            print(
                "\(title): " + rows.prefix(limit).map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
                    + (rows.count > limit ? ", … (\(rows.count) distinct)" : ""))
        }
        table("formats", report.formats)
        table("modes", report.modes)
        table("sizes", report.sizes)
        table("aspect ratios (w/h)", report.aspectRatios)
        if let smallest = report.smallest { print("smallest: \(smallest.width)x\(smallest.height)") }
        if report.orientationTagged > 0 {
            print("EXIF-rotated: \(report.orientationTagged) (packing applies the rotation)")
        }
        if report.decodedWithWarnings > 0 {
            print("decoded with warnings (corrupt but readable): \(report.decodedWithWarnings)")
        }
        if !report.labelNames.isEmpty {
            print(
                "labels: " + zip(report.labelNames, report.labelCounts).map { "\($0) ×\($1)" }.joined(separator: ", "))
        }
        printUnfollowed(report.unfollowed)
        if let note = report.labelNote { print("note: \(note)") }
        for kind in DataError.Kind.allCases {
            let matching = report.bad.filter { $0.kind == kind }
            guard !matching.isEmpty else { continue }
            print("\(kind.rawValue): \(matching.count)")
            for error in matching.prefix(show) { print("  \(error.description)") }
            if matching.count > show { print("  … \(matching.count - show) more") }
        }
        if !report.duplicates.isEmpty {
            print(
                "exact duplicates: \(report.duplicates.count) group\(report.duplicates.count == 1 ? "" : "s"), "
                    + "\(report.duplicates.reduce(0) { $0 + $1.count - 1 }) redundant files"
            )
            for group in report.duplicates.prefix(show) { print("  " + group.joined(separator: " = ")) }
        }
    }
}

struct DatasetPack: ParsableCommand, StopsOnSignals {
    static let configuration = CommandConfiguration(
        commandName: "pack", abstract: "Decode, convert, crop and resize images into one packed file for training.")

    @Option(help: "A folder of images (labels from sub-folder names) or an IDX image file (.gz or raw).") var source:
        String
    @Option(help: "The packed file to write (written under a temporary name and renamed when complete).") var dest:
        String
    @Option(help: "Side of the square images to store.") var resolution: Int
    @Option(help: "1 (grayscale) or 3 (RGB).") var channels = 3
    @Option(
        help: ArgumentHelp(
            "center: the largest centred square; celeba: the 178x178 box at (0, 20) of CelebA's aligned faces; "
                + "none: squash to a square."))
    var crop: CropPolicy = .center
    @Option(help: "Background pixels added on each side first (2 makes 28x28 MNIST-style images 32x32).") var pad = 0
    @Option(
        name: .customLong("on-bad"),
        help: "skip: leave bad files out and list them beside the output; fail: stop at the first.")
    var onBad: BadFilePolicy = .skip

    func run() throws {
        let options = PackOptions(resolution: resolution, channels: channels, crop: crop, padding: pad, onBad: onBad)
        let destination = URL(fileURLWithPath: dest)
        var progress = ProgressLine()
        let start = monotonicSeconds()
        let summary: PackSummary
        StopSignals.install()
        do {
            summary = try DatasetPacker.pack(source: source, destination: destination, options: options) {
                done, total in
                let rate = Double(done) / max(monotonicSeconds() - start, 1e-3)
                progress.update(
                    "packing \(done)/\(total)  \(String(format: "%.0f", rate)) images/s  ETA "
                        + "\(String(format: "%.0f", Double(total - done) / max(rate, 1e-3))) s"
                )
            }
        } catch let error as PackInterrupted {
            progress.finish()
            FileHandle.standardError.write(Data("\(error.description)\n".utf8))
            Foundation.exit(128 + error.signal)
        } catch let error as DataError {
            progress.finish()
            throw ValidationError(error.description)
        }
        progress.finish()
        print(
            "packed \(summary.packed) images at \(resolution)x\(resolution)x\(channels) into \(dest) in "
                + "\(String(format: "%.1f", monotonicSeconds() - start)) s"
        )
        print(
            "modes: "
                + summary.modes.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
                + (summary.converted > 0
                    ? "; \(summary.converted) converted to \(channels == 1 ? "grayscale" : "RGB")" : ""))
        if summary.nonSquare > 0 {
            print("non-square: \(summary.nonSquare) (\(crop == .none ? "squashed" : "cropped: \(crop.rawValue)"))")
        }
        if summary.orientationApplied > 0 { print("EXIF orientation applied: \(summary.orientationApplied)") }
        if summary.decodedWithWarnings > 0 { print("decoded with warnings (kept): \(summary.decodedWithWarnings)") }
        if !summary.labelNames.isEmpty {
            let shown =
                summary.labelNames.prefix(10).joined(separator: ", ") + (summary.labelNames.count > 10 ? ", …" : "")
            print("labels: \(summary.labelNames.count) classes (\(shown))")
        }
        if let note = summary.labelNote { print("note: \(note)") }
        if summary.ignored > 0 { print("ignored \(summary.ignored) files that are not images") }
        printUnfollowed(summary.unfollowed)
        if let list = summary.skippedListPath {
            print("skipped \(summary.skipped.count) bad files (listed in \(list)):")
            for error in summary.skipped.prefix(10) { print("  \(error.description)") }
            if summary.skipped.count > 10 { print("  … \(summary.skipped.count - 10) more") }
        }
    }
}

/// Lists the symbolic links a walk did not follow.
func printUnfollowed(_ links: [(path: String, reason: String)]) {
    guard !links.isEmpty else { return }
    print("links not followed: \(links.count)")
    for link in links { print("  \(link.path): \(link.reason)") }
}
