import FileFormats

/// The command line's name for every setting the libraries name in messages: the one place where
/// settings become flags. `Entry.main` installs it before any command runs.
let flagNames: [Setting: String] = [
    .precision: "--precision", .backend: "--backend",
    .source: "--source", .resolution: "--resolution", .channels: "--channels", .padding: "--pad", .crop: "--crop",
    .data: "--data",
    .metrics: "--metrics", .count: "--num", .batchSize: "--batch", .kidSubsets: "--kid-subsets",
    .kidSubsetSize: "--kid-subset-size", .real: "--real", .fake: "--fake",
    .checkpoint: "--checkpoint", .ema: "--ema", .seeds: "--seeds", .classIndex: "--class", .grid: "--grid",
    .query: "--query", .layer: "--layer", .image: "--image",
    .folder: "--run-dir", .resume: "--resume", .config: "--config", .conditional: "--conditional",
    .steps: "--steps", .seed: "--seed", .learningRateG: "--lr-g", .learningRateD: "--lr-d",
    .discriminatorSteps: "--d-steps", .loss: "--loss", .update: "--update", .horizontalFlip: "--flip",
    .dequantize: "--dequantize", .onNonFinite: "--on-nan", .logEvery: "--log-every", .sampleEvery: "--sample-every",
    .checkpointEvery: "--checkpoint-every", .keepCheckpoints: "--keep", .replicaCheckEvery: "--replica-check-every",
    .evaluationEvery: "--eval-every", .evaluationMetrics: "--eval-metrics", .evaluationCount: "--eval-num",
    .evaluationReal: "--eval-real",
]
