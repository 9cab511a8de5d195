#!/usr/bin/env python3
"""How fast sagan studio answers: one generated image, and the attention maps of a click, per checkpoint.

    python3 benchmarks/studio_latency.py --runs DIR [--requests 30] [--threads 2]
        [--sagan .build/release/sagan] [--torch-python /usr/bin/python3] [--tf-python /opt/bench-venv/bin/python]

Starts `sagan studio --runs DIR` on a free port and, for the newest checkpoint of each run, asks for
--requests images of new seeds one after another (after one request that loads the model), then the
attention maps of a first click on each of 10 new seeds (G runs again to record them) and of 20 more
clicks on the last one (answered from the recording). Times whole HTTP round trips from this process:
request, G's forward pass at batch 1, PNG encoding, response. In the same invocation, each framework
times only G's forward pass at batch 1 for the same model configuration (PyTorch: the reference model
Tests/Reference/sagan_reference.py in eval mode under no_grad; TensorFlow: benchmarks/tf_sagan.py's G
under tf.function, left out when --tf-python has no TensorFlow). Prints medians and 90th percentiles
in ms.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare_pytorch import has_module  # noqa: E402


def start_studio(sagan, runs, threads):
    process = subprocess.Popen([sagan, "studio", "--runs", runs, "--port", "0", "--threads", str(threads)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not match:
        process.kill()
        sys.exit(f"sagan studio did not start: {line!r}")
    return process, match.group(1)


def fetch(address, path, **parameters):
    """The body and the round trip in ms."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    start = time.perf_counter()
    with opener.open(address + path + "?" + urllib.parse.urlencode(parameters)) as response:
        body = response.read()
    return body, 1e3 * (time.perf_counter() - start)


def spread(times):
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def framework_forward(python, framework, config, threads, repeats=30):
    """Median ms of G's forward pass at batch 1 in PyTorch or TensorFlow, in a child process."""
    if framework == "pytorch":
        code = f"""
import json, statistics, sys, time, torch
sys.path.insert(0, {os.path.join(HERE, '..', 'Tests', 'Reference')!r})
from sagan_reference import Generator
torch.set_num_threads({threads})
config = json.loads({json.dumps(json.dumps(config))})
G = Generator(config).eval()
times = []
with torch.no_grad():
    for i in range({repeats} + 3):
        start = time.perf_counter(); G(torch.randn(1, config["latentSize"])); times.append(time.perf_counter() - start)
print("RESULT", json.dumps([1e3 * statistics.median(times[3:]), torch.__version__]))
"""
    else:
        code = f"""
import json, statistics, sys, time
sys.path.insert(0, {HERE!r})
import tensorflow as tf
from tf_sagan import Generator
tf.config.threading.set_intra_op_parallelism_threads({threads})
tf.config.threading.set_inter_op_parallelism_threads(1)
config = json.loads({json.dumps(json.dumps(config))})
G = Generator(config, tf.float32)
forward = tf.function(lambda z: G(z))
times = []
for i in range({repeats} + 3):
    start = time.perf_counter(); forward(tf.random.normal([1, config["latentSize"]])).numpy()
    times.append(time.perf_counter() - start)
print("RESULT", json.dumps([1e3 * statistics.median(times[3:]), tf.__version__]))
"""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run([python, "-c", code], capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        return None, completed.stderr.strip().splitlines()[-1:]
    line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sagan", default=os.path.join(HERE, "..", ".build", "release", "sagan"))
    parser.add_argument("--torch-python", default="/usr/bin/python3")
    parser.add_argument("--tf-python", default="/opt/bench-venv/bin/python")
    args = parser.parse_args()
    studio, address = start_studio(args.sagan, args.runs, args.threads)
    rows = []
    try:
        runs = json.loads(fetch(address, "api/runs")[0])
        for run in runs:
            details = json.loads(fetch(address, "api/run", run=run["id"])[0])
            steps = [c for c in details["checkpoints"] if c["file"] != "best.safetensors"]
            if not steps:
                continue
            model = {"run": run["id"], "checkpoint": steps[0]["file"]}
            _, load = fetch(address, "api/generate", seed=0, **model)
            images = [fetch(address, "api/generate", seed=seed, **model)[1] for seed in range(1, args.requests + 1)]
            middle = run["resolution"] // 2
            first_clicks = [fetch(address, "api/attention", seed=1000 + seed, x=middle, y=middle, **model)[1]
                            for seed in range(10)]
            clicks = [fetch(address, "api/attention", seed=1009, x=x, y=x, **model)[1] for x in range(20)]
            config = json.loads(open(os.path.join(args.runs, run["id"], "run.json")).read())["config"]["model"]
            rows.append({"run": run["id"], "resolution": run["resolution"], "first_load_ms": load,
                         "image_ms": spread(images), "first_click_ms": spread(first_clicks),
                         "click_ms": spread(clicks), "config": config})
    finally:
        studio.terminate()
        studio.wait(timeout=30)
    frameworks = {"pytorch": os.path.exists(args.torch_python) and has_module(args.torch_python, "torch"),
                  "tensorflow": has_module(args.tf_python, "tensorflow")}
    print(f"\nsagan studio round trips over HTTP on loopback, {args.threads} threads, {args.requests} images each "
          "(median / 90th percentile, ms):")
    print("| run | side | model load | image | first click of a seed | next clicks | G forward b1: PyTorch | "
          "TensorFlow |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = []
        for framework, python in (("pytorch", args.torch_python), ("tensorflow", args.tf_python)):
            if not frameworks[framework]:
                cells.append("not installed")
                continue
            milliseconds, detail = framework_forward(python, framework, row["config"], args.threads)
            cells.append(f"{milliseconds:.1f} ({framework} {detail})" if milliseconds else f"failed: {detail}")
        print(f"| {row['run']} | {row['resolution']} | {row['first_load_ms']:.0f} | "
              f"{row['image_ms'][0]:.1f} / {row['image_ms'][1]:.1f} | "
              f"{row['first_click_ms'][0]:.1f} / {row['first_click_ms'][1]:.1f} | "
              f"{row['click_ms'][0]:.1f} / {row['click_ms'][1]:.1f} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
