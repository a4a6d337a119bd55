"""Checkpointer and worker helpers, in one process (no process group needed)."""

from __future__ import annotations


import pytest

torch = pytest.importorskip("torch")

from gpufleet.training import worker  # noqa: E402


class Wrapped(torch.nn.Module):
    """Stands in for DistributedDataParallel: the model sits in .module, names start with 'module.'."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def parts():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def test_rank0_saves_unwrapped_atomically_and_keeps_the_last_n(tmp_path):
    model, opt, sched = parts()
    ck = worker.Checkpointer(tmp_path, keep=2, rank=0)
    for step in (5, 10, 15):
        ck.save(step, Wrapped(model), opt, sched, extra={"note": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000010.pt", "ckpt-00000015.pt"]
    state = torch.load(tmp_path / "ckpt-00000015.pt", weights_only=True)
    assert set(state["model"]) == {"weight", "bias"}  # no 'module.' prefix
    assert state["step"] == 15 and state["optimizer"]["state"] and state["lr_scheduler"]["last_epoch"] == 1

    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_sched = torch.optim.lr_scheduler.StepLR(fresh_opt, step_size=1, gamma=0.5)
    loader = worker.Checkpointer(tmp_path, rank=3, device="cpu")
    assert loader.load(Wrapped(fresh), fresh_opt, fresh_sched) == 15
    assert torch.equal(fresh.weight, model.weight) and loader.extra == {"note": 15}
    assert fresh_sched.last_epoch == 1 and fresh_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"].shape == (2, 3)


def test_other_ranks_never_write(tmp_path):
    model, opt, sched = parts()
    assert worker.Checkpointer(tmp_path / "c", rank=1).save(1, model, opt, sched) is None
    assert not (tmp_path / "c").exists()


def test_a_torn_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched = parts()
    ck = worker.Checkpointer(tmp_path, rank=0)
    ck.save(1, model, opt)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(worker.torch, "save", boom)
    with pytest.raises(OSError):
        ck.save(2, model, opt)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001.pt"]  # no partial file, no temp file
    assert ck.latest().name == "ckpt-00000001.pt"


def test_load_maps_to_the_current_device_and_refuses_pickles(tmp_path, monkeypatch):
    model, opt, _ = parts()
    ck = worker.Checkpointer(tmp_path, rank=0, device="cpu")
    ck.save(7, model, opt)
    seen = {}
    real_load = torch.load

    def spy(path, **kw):
        seen.update(kw)
        return real_load(path, **kw)
    monkeypatch.setattr(worker.torch, "load", spy)
    assert ck.load(torch.nn.Linear(3, 2)) == 7
    assert seen == {"map_location": torch.device("cpu"), "weights_only": True}
    torch.save({"step": 1, "model": {}, "evil": object()}, tmp_path / "ckpt-00000099.pt")
    with pytest.raises(Exception):
        ck.load(torch.nn.Linear(3, 2))  # weights_only refuses arbitrary objects


def test_no_checkpoint_means_step_zero(tmp_path):
    assert worker.Checkpointer(tmp_path, rank=0).load(torch.nn.Linear(3, 2)) == 0


def test_sampler_epochs_reshuffle_and_partition(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = list(range(10))
    ctx = worker.context_from_env()
    assert ctx.backend == "gloo" and ctx.device.type == "cpu"
    sampler = worker.distributed_sampler(data, ctx, seed=3)
    orders = [list(sampler) for _ in worker.epochs(sampler, 2)]
    assert orders[0] != orders[1] and all(len(o) == 5 for o in orders)
    other = worker.distributed_sampler(data, worker.WorkerContext(0, 2, 0, 1, 0, 0, 0, "x", "gloo", ctx.device), seed=3)
    other.set_epoch(1)
    assert sorted(list(other) + orders[1]) == data  # the two ranks split the epoch


def test_init_without_launcher_env_says_how_to_start(monkeypatch):
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(worker.WorkerEnvError, match="gpufleet train"):
        worker.init()


def test_wait_for_master_gives_up_with_a_clear_message():
    with pytest.raises(worker.WorkerEnvError, match="did not resolve"):
        worker.wait_for_master("no-such-host.invalid", timeout=0.3, interval=0.1)
