"""DDP on synthetic regression data: a small MLP learns y = sin(x . w) + x . v from 2,048 generated points.

Run it with gpufleet's launcher (or torchrun; the environment contract is the same):

    gpufleet train --nnodes 2 --nproc-per-node 2 examples/training/ddp_regression.py --steps 60
    gpufleet train examples/training/ddp_regression.yaml
    torchrun --nnodes 1 --nproc-per-node 4 examples/training/ddp_regression.py

Every rank builds the same data (fixed seed), sees its own quarter of each epoch through a
DistributedSampler (set_epoch each epoch), and DDP averages the gradients, so at the end every rank holds
the same parameters: the script checks it with an all_gather and reports the loss on the whole data set
before and after training. With a checkpoint directory (``--checkpoint-dir`` or the job's
``checkpointDir``) rank 0 saves every ``--save-every`` steps and a restarted job resumes from the latest
checkpoint: the step counter continues where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset

from gpufleet.training import worker


def make_data(n: int = 2048, dim: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w, v = torch.randn(dim, generator=g), torch.randn(dim, generator=g) * 0.5
    y = torch.sin(x @ w) + x @ v + 0.05 * torch.randn(n, generator=g)
    return TensorDataset(x, y.unsqueeze(1))


def full_loss(model, data: TensorDataset, device) -> float:
    with torch.no_grad():
        x, y = data.tensors
        return float(F.mse_loss(model(x.to(device)), y.to(device)))


def params_digest(model) -> str:
    flat = torch.cat([p.detach().float().cpu().flatten() for p in model.parameters()])
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps in all (default 60)")
    ap.add_argument("--batch-size", type=int, default=32, help="per rank (default 32)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--checkpoint-dir", default=None, help="default: the job's checkpointDir, if any")
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--step-sleep", type=float, default=0.0, help="seconds to sleep per step (tests)")
    ap.add_argument("--report-dir", default=None, help="write progress and a final JSON report per rank here")
    args = ap.parse_args()

    ctx = worker.init()
    torch.manual_seed(1234 + ctx.rank)  # different initial weights per rank: DDP broadcasts rank 0's
    data = make_data()
    sampler = worker.distributed_sampler(data, ctx, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(args.steps // 2, 1), gamma=0.5)

    ckpt_dir = args.checkpoint_dir or ctx.checkpoint_dir
    checkpointer = worker.Checkpointer(ckpt_dir, keep=2, ctx=ctx) if ckpt_dir else None
    start_step = checkpointer.load(model, optimizer, scheduler) if checkpointer else 0
    first_loss = checkpointer.extra.get("first_loss") if checkpointer and start_step else None
    ddp = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if first_loss is None:
        first_loss = full_loss(model, data, ctx.device)  # after DDP's broadcast: rank 0's initial weights
    if ctx.is_main:
        what = f"resuming at step {start_step}" if start_step else "starting"
        print(f"{what}: world size {ctx.world_size}, restart {ctx.restart_count}, loss {first_loss:.4f}",
              flush=True)

    def report(name: str, payload: dict) -> None:
        if args.report_dir:
            os.makedirs(args.report_dir, exist_ok=True)
            path = os.path.join(args.report_dir, f"{name}-rank{ctx.rank}.json")
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(payload, f)
            os.replace(tmp, path)

    steps_per_epoch = len(loader)
    step = start_step
    for epoch in worker.epochs(sampler, stop=10**9, start=start_step // steps_per_epoch):
        for i, (x, y) in enumerate(loader):
            if epoch * steps_per_epoch + i < step:
                continue  # already done before the restart
            if step >= args.steps:
                break
            optimizer.zero_grad()
            loss = F.mse_loss(ddp(x.to(ctx.device)), y.to(ctx.device))
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            report("progress", {"step": step, "pid": os.getpid(), "restart": ctx.restart_count})
            if checkpointer and step % args.save_every == 0:
                checkpointer.save(step, ddp, optimizer, scheduler, extra={"first_loss": first_loss})
            if ctx.is_main and step % 10 == 0:
                print(f"step {step} loss {loss.item():.4f}", flush=True)
            if args.step_sleep:
                time.sleep(args.step_sleep)
        if step >= args.steps:
            break

    final = full_loss(model, data, ctx.device)
    digest = params_digest(model)
    digests = [None] * ctx.world_size
    torch.distributed.all_gather_object(digests, digest)
    identical = len(set(digests)) == 1
    if ctx.is_main:
        print(f"done at step {step}: loss {first_loss:.4f} -> {final:.4f}; parameters identical on all "
              f"{ctx.world_size} ranks: {identical}", flush=True)
    report("final", {"rank": ctx.rank, "start_step": start_step, "step": step, "restart": ctx.restart_count,
                     "first_loss": first_loss, "final_loss": final, "digest": digest, "identical": identical})
    worker.shutdown()
    if not identical or not final < first_loss:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
