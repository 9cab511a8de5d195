#!/usr/bin/python3
"""A PyTorch trainer for the reference model, trained as `sagan train` trains, to compare whole runs.

    /usr/bin/python3 benchmarks/torch_trainer.py --run-json RUN/run.json --data PACK --steps 2000 \\
        --save-at 500,1000,2000 --out DIR [--seed 0] [--threads 2]

The model is Tests/Reference/sagan_reference.py (parity-tested layer by layer against our engine)
with the resolved settings of a `sagan train` run (its run.json's "config"): Glorot-uniform weights
and zero biases, SN with one power iteration per training forward, Adam (beta1, beta2, epsilon,
lr D and G) and the hinge loss, alternating updates exactly as sagan's Trainer does them: per D
step a real batch and a detached fake batch from G in training mode, then a G step with fresh z.
The images come in sagan's order: the batches `sagan train` draws with the same seed and batch size
(benchmarks/sagan_order.py, checked against the Swift loader by DatasetsTests), so data order is not
a difference. What differs: the random streams of z, the initial weights and SN's initial u are
PyTorch's - the same distributions, not the same numbers.

Writes DIR/step-NNNNNN.safetensors at each --save-at step, model checkpoints (`kind` checkpoint,
G.* and D.*) that `sagan eval --checkpoint` reads, and DIR/log.jsonl: one line per step with the
losses and the seconds the step took. At each of those steps DIR/resume.pt also keeps what training
needs to go on (both models with SN's vectors, both Adams, the random state, the step): with
--resume, an interrupted or shorter run continues from it exactly as if it had not stopped.
"""
import argparse
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from sagan_order import batch_indices  # noqa: E402
from sagan_reference import Discriminator, Generator, hinge_d, hinge_g, load_safetensors, save_safetensors  # noqa: E402


def glorot(module):
    """Our `glorotUniform`: U(±sqrt(6 / (fanIn + fanOut))) weights, zero biases; SN's u and v follow the new weight."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
            if hasattr(layer, "output_axis"):
                layer.init_spectral_norm(layer.output_axis)


def batches(images, batch, seed):
    """The batches `sagan train` draws with this seed, in [-1, 1] (x / 127.5 - 1, NCHW)."""
    for indices in batch_indices(images.shape[0], batch, seed):
        yield images[torch.tensor(indices)].permute(0, 3, 1, 2).float() / 127.5 - 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-json", required=True, help="a sagan run's run.json: the settings to train with")
    parser.add_argument("--data", required=True, help="the packed dataset the sagan run trained on")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--save-at", default="", help="steps to save a checkpoint at, comma-separated (and the last)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, help="default: the run's seed")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--resume", action="store_true", help="continue from DIR/resume.pt when it exists")
    args = parser.parse_args()

    config = json.load(open(args.run_json))["config"]
    model = config["model"]
    if config["update"] != "alternating" or config["loss"] != "hinge" or config["ema"] or config["model"]["classCount"]:
        sys.exit(f"error: {args.run_json}: this trainer does alternating hinge updates without EMA or classes")
    if config["horizontalFlip"] or config["dequantize"]:
        sys.exit(f"error: {args.run_json}: flips and dequantisation are not implemented here")
    if "glorotUniform" not in model["initializer"]:
        sys.exit(f"error: {args.run_json}: initializer {model['initializer']} is not implemented here")
    seed = config["seed"] if args.seed is None else args.seed
    torch.manual_seed(seed)
    torch.set_num_threads(args.threads)
    tensors, _ = load_safetensors(args.data)
    images = tensors["images"]  # (count, height, width, channels), uint8
    G, D = Generator(model), Discriminator(model)
    glorot(G), glorot(D)
    G.train(), D.train()
    # JSON writes beta1 = 0 as an integer, and PyTorch 2 refuses betas of mixed types.
    betas = (float(config["beta1"]), float(config["beta2"]))
    optimizer_g = torch.optim.Adam(G.parameters(), lr=config["learningRateG"], betas=betas, eps=config["adamEpsilon"])
    optimizer_d = torch.optim.Adam(D.parameters(), lr=config["learningRateD"], betas=betas, eps=config["adamEpsilon"])
    batch, latent = config["batchSize"], model["latentSize"]
    save_at = {int(s) for s in args.save_at.split(",") if s} | {args.steps}
    os.makedirs(args.out, exist_ok=True)
    resume_file = os.path.join(args.out, "resume.pt")
    done = 0
    if args.resume and os.path.exists(resume_file):
        done = restore(resume_file, G, D, optimizer_g, optimizer_d)
        if done > args.steps:
            sys.exit(f"error: {resume_file}: step {done} is past --steps {args.steps}")
    log_file = os.path.join(args.out, "log.jsonl")
    kept = [line for line in open(log_file) if json.loads(line)["step"] <= done] if done else []
    log = open(log_file, "w", buffering=1)  # a line per step, readable while it trains
    log.writelines(kept)
    loader = itertools.islice(batches(images, batch, seed), done * config["discriminatorSteps"], None)
    for step in range(done + 1, args.steps + 1):
        began = time.perf_counter()
        for _ in range(config["discriminatorSteps"]):
            real = next(loader)
            with torch.no_grad():
                fake = G(torch.randn(batch, latent))
            d_real, d_fake = D(real), D(fake)
            loss_d = hinge_d(d_real, d_fake)
            optimizer_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optimizer_d.step()
        loss_g = hinge_g(D(G(torch.randn(batch, latent))))
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        seconds = time.perf_counter() - began
        if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
            sys.exit(f"error: step {step}: a loss is not finite (D {loss_d.item()}, G {loss_g.item()})")
        row = {"step": step, "loss_d": loss_d.item(), "loss_g": loss_g.item(), "seconds": seconds}
        log.write(json.dumps(row) + "\n")
        if step in save_at:
            state = {f"G.{k}": v for k, v in G.state_dict().items()}
            state.update({f"D.{k}": v for k, v in D.state_dict().items()})
            metadata = {"format": "pt", "kind": "checkpoint", "model_config": json.dumps(model), "step": str(step),
                        "torch": torch.__version__}
            path = os.path.join(args.out, f"step-{step:06d}.safetensors")
            save_safetensors(path + ".partial", state, metadata)
            os.replace(path + ".partial", path)
            keep(resume_file, step, G, D, optimizer_g, optimizer_d)
    log.close()


def keep(path, step, G, D, optimizer_g, optimizer_d):
    """What training needs to go on from `step`, replacing the file whole."""
    state = {"step": step, "G": G.state_dict(), "D": D.state_dict(), "optimizer_g": optimizer_g.state_dict(),
             "optimizer_d": optimizer_d.state_dict(), "random": torch.get_rng_state()}
    torch.save(state, path + ".partial")
    os.replace(path + ".partial", path)


def restore(path, G, D, optimizer_g, optimizer_d):
    """Loads what `keep` wrote into the models and optimizers; returns the step it was kept at."""
    state = torch.load(path)
    G.load_state_dict(state["G"]), D.load_state_dict(state["D"])
    optimizer_g.load_state_dict(state["optimizer_g"]), optimizer_d.load_state_dict(state["optimizer_d"])
    torch.set_rng_state(state["random"])
    return state["step"]


if __name__ == "__main__":
    main()
