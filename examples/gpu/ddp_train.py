#!/usr/bin/env python3
"""A PyTorch DistributedDataParallel training loop that times its steps (scripts/gpu-validate.sh,
part 2: the recorder's overhead on a real job, with and without PyTorch's own flight recorder).

Launch it with torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous:

    python3 -m torch.distributed.run --standalone --nproc_per_node 2 examples/gpu/ddp_train.py \
        --steps 60 --out step_times.json
    LD_PRELOAD=build/recorder/libncclfr.so python3 -m torch.distributed.run ...   # recorded

The model is a stack of Linear+ReLU layers sized so DDP reduces its gradients in several buckets
(several NCCL all-reduces per step), trained with SGD on random data. Each timed step ends with a
device synchronisation so its wall time is the step's whole cost. Rank 0 writes a JSON summary.

With more ranks than GPUs, ranks share GPUs: each rank then gets its own NCCL_HOSTID, because NCCL
refuses two ranks of a communicator on one GPU ("Duplicate GPU detected") unless it takes them for
different hosts (it then talks over sockets, which is slow but fine for measuring an overhead).
--device cpu --backend gloo runs the same loop without a GPU (a check of the script itself; the
recorder sees nothing then, gloo does not use NCCL).

Exit codes: 0 done; 1 a failure in the training loop; 2 bad usage.
"""
import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--hidden", type=int, default=2048, help="width of each layer")
    p.add_argument("--layers", type=int, default=6, help="Linear+ReLU layers")
    p.add_argument("--batch", type=int, default=256, help="samples per rank and step")
    p.add_argument("--bucket-mb", type=float, default=25.0, help="DDP bucket_cap_mb")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--backend", choices=["nccl", "gloo"], default=None, help="default: nccl on cuda, gloo on cpu")
    p.add_argument("--out", default="", help="rank 0 writes the summary here (JSON)")
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.hidden < 1 or a.layers < 1 or a.batch < 1:
        p.error("--steps, --hidden, --layers and --batch must be positive, --warmup >= 0")
    if a.backend is None:
        a.backend = "nccl" if a.device == "cuda" else "gloo"
    return a


def preloaded_ncclfr():
    """Whether libncclfr.so is mapped into this process (LD_PRELOAD reached it)."""
    try:
        with open("/proc/self/maps") as f:
            return any("libncclfr" in line for line in f)
    except OSError:
        return False


def nccl_version(torch):
    v = torch.cuda.nccl.version()  # a tuple in recent releases, an int (2.x.y as 2xxyy) in old ones
    return ".".join(str(p) for p in v) if isinstance(v, tuple) else str(v)


def main():
    a = parse_args()
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))

    if a.device == "cuda":
        if not torch.cuda.is_available():
            print("ddp_train: no CUDA device (use --device cpu to check the script)", file=sys.stderr)
            return 2
        gpus = torch.cuda.device_count()
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        if local_world > gpus and "NCCL_HOSTID" not in os.environ:
            # Read by NCCL when the first communicator is made, which is after this line.
            os.environ["NCCL_HOSTID"] = f"ddp-train-rank{rank}"
        device = torch.device("cuda", local % gpus)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    dist.init_process_group(backend=a.backend)
    torch.manual_seed(1234 + rank)
    layers = []
    for _ in range(a.layers):
        layers += [nn.Linear(a.hidden, a.hidden), nn.ReLU()]
    model = nn.Sequential(*layers).to(device)
    ddp = DDP(model, device_ids=[device.index] if a.device == "cuda" else None, bucket_cap_mb=a.bucket_mb)
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-4)
    x = torch.randn(a.batch, a.hidden, device=device)
    y = torch.randn(a.batch, a.hidden, device=device)
    loss_fn = nn.MSELoss()

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    sync()
    dist.barrier()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t0)
    final_loss = float(loss.detach().cpu())
    dist.barrier()

    if rank == 0:
        ms = sorted(t * 1e3 for t in times)
        summary = {
            "ranks": world,
            "steps": a.steps,
            "warmup": a.warmup,
            "median_step_ms": statistics.median(ms),
            "mean_step_ms": statistics.fmean(ms),
            "p10_step_ms": ms[int(0.1 * (len(ms) - 1))],
            "p90_step_ms": ms[int(0.9 * (len(ms) - 1))],
            "params": sum(p.numel() for p in model.parameters()),
            "loss": final_loss,
            "backend": a.backend,
            "device": torch.cuda.get_device_name(device) if a.device == "cuda" else "cpu",
            "torch": torch.__version__,
            "nccl": nccl_version(torch) if a.device == "cuda" else None,
            "ncclfr_preloaded": preloaded_ncclfr(),
            "nccl_hostid_per_rank": "NCCL_HOSTID" in os.environ,
            "trace_buffer_size": os.environ.get("TORCH_NCCL_TRACE_BUFFER_SIZE", ""),
        }
        text = json.dumps(summary, indent=2, sort_keys=True)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text + "\n")
        print(f"ddp_train: {world} ranks, {a.steps} steps: median step {summary['median_step_ms']:.3f} ms "
              f"(p10 {summary['p10_step_ms']:.3f}, p90 {summary['p90_step_ms']:.3f}), "
              f"ncclfr preloaded: {summary['ncclfr_preloaded']}")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
