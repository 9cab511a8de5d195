#!/usr/bin/env bash
# Data-parallel training across two machines, for real (issue 16): two Linux network namespaces stand
# for two hosts, joined by a veth pair on their own addresses (10.77.0.1 and 10.77.0.2). mpirun runs
# on host a; Open MPI's remote launcher reaches host b through a small agent that runs the command in
# b's namespace, where ssh would log in to another machine. Ranks talk over TCP on the veth pair only.
#   1. 2 ranks, one per host, train 4 steps: exit 0, and host b's interface carried the gradients.
#   2. A single process resumes that run to step 6 and ends where 6 uninterrupted steps end.
#   3. The allreduce of blog128's gradients (26.6 MB) over the veth pair and over loopback, timed by
#      `sagan bench allreduce` (printed; these are the scaling model's inputs in docs/distributed.md).
# Needs root (ip netns); prints one line per check and stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
sagan=$PWD/.build/release/sagan
work=$(mktemp -d)
host_a=sagan-a-$$
host_b=sagan-b-$$
cleanup() {
    ip netns del "$host_a" 2> /dev/null || true
    ip netns del "$host_b" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

ip netns add "$host_a"
ip netns add "$host_b"
ip link add veth-a netns "$host_a" type veth peer name veth-b netns "$host_b"
ip -n "$host_a" addr add 10.77.0.1/24 dev veth-a
ip -n "$host_b" addr add 10.77.0.2/24 dev veth-b
for host in "$host_a" "$host_b"; do
    ip -n "$host" link set lo up
done
ip -n "$host_a" link set veth-a up
ip -n "$host_b" link set veth-b up

# Open MPI calls the agent as `AGENT HOST COMMAND...`, as it would call ssh.
agent=$work/netns-agent
cat > "$agent" << AGENT
#!/bin/sh
host=\$1
shift
case "\$host" in
    10.77.0.1) namespace=$host_a ;;
    10.77.0.2) namespace=$host_b ;;
    *) echo "netns-agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$namespace" /bin/sh -c "\$*"
AGENT
chmod +x "$agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hostfile"
# One rank per host, TCP between them on the veth pair (the launcher's own channel too). Both
# "hosts" share this machine's cores and kernel: a rank that polls without yielding starves the
# kernel thread that moves packets across the veth pair (ksoftirqd), and every message then waits
# for a scheduler tick (8 ms per allreduce of any size, measured). Separate machines do not share
# that thread; here the ranks yield when idle.
mpirun=(ip netns exec "$host_a" mpirun --hostfile "$work/hostfile" -np 2 --map-by node
        --mca plm_rsh_agent "$agent" --mca btl self,tcp --mca mpi_yield_when_idle 1
        --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
        -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM)
received() { ip netns exec "$host_b" cat /sys/class/net/veth-b/statistics/rx_bytes; }

pack=$work/fm.safetensors
$sagan dataset pack --source /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --dest "$pack" \
    --resolution 32 --channels 1 --pad 2 > /dev/null
train=(train --data "$pack" --preset tiny32 --batch 8 --checkpoint-every 1 --keep 10 --log-every 1
       --sample-every 1000 --seed 5)

# 1. Two hosts, one rank each.
before=$(received)
timeout 300 "${mpirun[@]}" "$sagan" "${train[@]}" --steps 4 --run-dir "$work/two-hosts" > "$work/two.log" 2>&1 \
    || fail "2 ranks on 2 hosts: $(cat "$work/two.log")"
grep -q "on 2 ranks (4 images each)" "$work/two.log" || fail "not on 2 ranks: $(cat "$work/two.log")"
carried=$(( $(received) - before ))
world_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["world_size"])' \
    "$work/two-hosts/run.json")
[ "$world_size" = 2 ] || fail "run.json world_size is $world_size"
# tiny32's G and D gradients are 2.42 MB at fp32 (605,748 parameters), averaged once per network
# and step; in a 2-rank allreduce each rank receives the whole buffer once (half while reducing,
# half while gathering): 4 steps bring host b about 9.7 MB, where the launcher's messages are kB.
[ "$carried" -gt 9000000 ] || fail "host b received only $carried bytes: not over the veth pair"
echo "ok: 2 ranks on 2 hosts (network namespaces) trained 4 steps over TCP; host b received $carried bytes"

# 2. Resume in a single process, compare with 6 uninterrupted steps.
$sagan "${train[@]}" --steps 6 --run-dir "$work/two-hosts" --resume auto > "$work/resume.log" 2>&1 \
    || fail "resuming in one process: $(cat "$work/resume.log")"
grep -q "at step 4" "$work/resume.log" || fail "did not resume at step 4: $(cat "$work/resume.log")"
$sagan "${train[@]}" --steps 6 --run-dir "$work/straight" > /dev/null
# The same comparisons as DistributedTrainingTests, which says why: step 1's gradients (Adam's first
# moments, β₁ = 0) per tensor within 1e-5; after 6 steps, parameters element by element within
# 2·sqrt(1/(1 − β₂))·lr per step (Adam with β₁ = 0 moves an element ±lr whatever its gradient's
# size, so a gradient within rounding of zero that two summation orders round to opposite signs puts
# that element 2·lr apart, and the GAN amplifies it from there), buffers per tensor within 1e-2, the
# zero-gradient attention key biases absolutely; Adam's moments only on step 1.
python3 - "$work/two-hosts/checkpoints" "$work/straight/checkpoints" 6 \
    << 'PY' || fail "the resumed run differs from an uninterrupted one"
import json, math, struct, sys
def load(path):
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if entry["dtype"] == "F32":
            out[name] = struct.unpack(f"<{(end - begin) // 4}f", data[8 + size + begin:8 + size + end])
    return out, metadata
def relative(x, y):
    difference = math.sqrt(sum((u - v) ** 2 for u, v in zip(x, y)))
    norm = math.sqrt(sum(v * v for v in y))
    return difference / norm if norm > 0 else difference, difference
steps = int(sys.argv[3])
(a, _), (b, _) = (load(f"{folder}/step-000001.safetensors") for folder in sys.argv[1:3])
def check(what, x, y, limit):
    """The relative difference of x and y (at most `limit`); a zero-gradient key bias absolutely."""
    ratio, difference = relative(x, y)
    if what.endswith(".f.bias"):
        if difference > 1e-6:
            sys.exit(f"{what}: absolute difference {difference}")
        return 0.0
    if ratio > limit:
        sys.exit(f"{what}: relative difference {ratio}")
    return ratio
worst_gradient = max(check(f"step 1 gradient {name}", a[name], b[name], 1e-5)
                     for name in sorted(n for n in b if n.startswith(("opt_G.m.", "opt_D.m."))))
(a, _), (b, metadata) = (load(f"{folder}/step-{steps:06d}.safetensors") for folder in sys.argv[1:3])
assert a.keys() == b.keys(), "different tensors"
per_step = 2 * math.sqrt(1 / (1 - json.loads(metadata["config"])["beta2"]))
rates = {net: struct.unpack("<f", struct.pack("<I", int(metadata[f"opt_{net}.lr"])))[0] for net in "GD"}
worst_rates = worst_relative = 0.0
for name in sorted(b):
    net, _, rest = name.partition(".")
    if name.startswith("opt_"):
        continue
    if net in rates and f"opt_{net}.m.{rest}" in b and not name.endswith(".f.bias"):
        largest = max(abs(x - y) for x, y in zip(a[name], b[name])) / rates[net]
        worst_rates = max(worst_rates, largest)
        if largest > per_step * steps:
            sys.exit(f"{name}: elements {largest:.2f} learning rates apart after {steps} steps")
        continue
    worst_relative = max(worst_relative, check(name, a[name], b[name], 1e-2))
print(f"step 1 gradients worst relative {worst_gradient:.2e}; after {steps} steps parameters at most "
      f"{worst_rates:.3g} learning rates apart (limit {per_step * steps:.1f}), buffers worst relative "
      f"{worst_relative:.2e}, over {len(b)} tensors")
PY
echo "ok: the 2-host checkpoint resumed in one process ends where 6 uninterrupted steps end"

# 3. Allreduce timings: over the veth pair (TCP), then 2 ranks on one host (shared memory).
echo "allreduce over the veth pair between the two hosts (TCP):"
timeout 300 "${mpirun[@]}" "$sagan" bench allreduce --iterations 10 | tail -n +2
# On one host, yielding is what costs a tick (the ranks have the cores to themselves); mpirun turns
# it on by itself when it believes the node oversubscribed (--oversubscribe).
echo "allreduce between 2 ranks on one host (shared memory):"
timeout 300 mpirun -np 2 --mca mpi_yield_when_idle 0 "$sagan" bench allreduce --iterations 10 | tail -n +2
echo "allreduce between 2 ranks on one host over TCP loopback:"
timeout 300 mpirun -np 2 --mca btl self,tcp --mca mpi_yield_when_idle 0 "$sagan" bench allreduce --iterations 10 \
    | tail -n +2
