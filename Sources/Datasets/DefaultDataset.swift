import FileFormats
import Foundation

/// The dataset `sagan train` uses without `--data`: Fashion-MNIST (MIT licence, © 2017 Zalando SE)
/// from Debian's `dataset-fashion-mnist` package, packed once at 32x32 (2 pixels of padding) into
/// the cache folder.
public enum DefaultDataset {
    public static let packageFolder = "/usr/share/datasets/fashion-mnist"
    public static let trainImages = "train-images-idx3-ubyte.gz"
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// $SAGAN_CACHE, else $XDG_CACHE_HOME/sagan, else $HOME/.cache/sagan: the Makefile's order, so
    /// the Inception weights it converts are where the tool looks. The passwd home is only the last
    /// resort, when $HOME is unset.
    public static var cacheFolder: URL { cacheFolder(environment: ProcessInfo.processInfo.environment) }

    /// The cache folder that `environment` selects.
    public static func cacheFolder(environment: [String: String]) -> URL {
        if let explicit = environment["SAGAN_CACHE"], !explicit.isEmpty { return URL(fileURLWithPath: explicit) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("sagan")
        }
        let home =
            environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.path
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/sagan")
    }

    /// The packed Fashion-MNIST training set, packing it on first use.
    public static func fashionMNIST(
        folder: String = packageFolder, cache: URL = cacheFolder,
        progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> URL {
        let source = (folder as NSString).appendingPathComponent(trainImages)
        guard FileManager.default.fileExists(atPath: source) else {
            throw DataError(
                .unreadable, source,
                "Fashion-MNIST is not installed. Install Debian's package with `apt-get install "
                    + "dataset-fashion-mnist` (MIT licence), or pass \(Setting.data) with a packed dataset"
            )
        }
        let destination = cache.appendingPathComponent("fashion-mnist-train-32x32.safetensors")
        if let existing = try? PackedDataset(contentsOf: destination), existing.count == 60_000, existing.height == 32 {
            return destination
        }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let options = PackOptions(
            resolution: 32, channels: 1, crop: .center, padding: 2, onBad: .fail, labelNames: classNames)
        _ = try DatasetPacker.pack(source: source, destination: destination, options: options, progress: progress)
        return destination
    }
}
