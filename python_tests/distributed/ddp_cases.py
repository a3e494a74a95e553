"""What the 2-process tests run in each process: a tiny float64 task, a training run, the sharded
evaluations. Module-level functions, so ``torch.multiprocessing.spawn`` can import them."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

from r2et_fast.datasets import Split
from r2et_fast.train import TensorBatches, TrainConfig, Trainer, build_model

N_FEATURES = 10


def task(n: int = 40, seed: int = 0) -> Split:
    """A small float64 binary task (the same on every rank)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * n, N_FEATURES, generator=gen, dtype=torch.float64)
    y = (x[:, :3].sum(1) > 0).long()
    return Split(x[:n], y[:n], x[n:2 * n], y[n:2 * n], x[2 * n:], y[2 * n:])


def config(method: str, **extra) -> TrainConfig:
    base = dict(epochs=2, batch_size=8, hidden=8, k=3, lr=1e-2, seed=3, device="cpu")
    return TrainConfig(method=method, **{**base, **extra})


class KilledBatches(TensorBatches):
    """TensorBatches whose iteration kills this process (no clean-up, as SIGKILL would) at batch
    ``at[2]`` of epoch ``at[1]`` on rank ``at[0]``."""

    def __init__(self, *args, at: tuple[int, int, int] | None = None) -> None:
        super().__init__(*args)
        self.at = at

    def __iter__(self):
        for b, batch in enumerate(super().__iter__()):
            if self.at is not None and (dist.get_rank(), self.epoch, b) == self.at:
                os._exit(17)
            yield batch


def fit(cfg: TrainConfig, data: Split, out: Path | None = None, n_rows: int = 37,
        kill: tuple[int, int, int] | None = None, no_ddp: bool = False,
        distributed: bool | None = None) -> tuple[torch.nn.Module, Trainer]:
    """Train ``cfg`` on the first ``n_rows`` training rows (37: the last batch of 8 holds 5 rows,
    which two ranks split 3 + 2)."""
    model = build_model(cfg, N_FEATURES, 2).double()
    batches = KilledBatches(data.x_train[:n_rows], data.y_train[:n_rows], cfg.batch_size, cfg.seed, at=kill)
    trainer = Trainer(model, cfg, progress=False, out_dir=out, wrap=(lambda m: m) if no_ddp else None,
                      distributed=distributed)
    return trainer.fit(batches, (data.x_val, data.y_val)).model, trainer


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def run(rank: int, world: int, init_file: str, job: str, out: str, kwargs: dict) -> None:
    """One rank: join the group, run ``job`` and let rank 0 save what it returned to ``out``."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    kwargs = dict(kwargs)
    backend = kwargs.pop("backend", "gloo")
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    from r2et_fast._device import auto_means

    try:
        with auto_means("cuda" if backend == "nccl" else "cpu"):  # as the test process's "auto"
            result = JOBS[job](**kwargs)
        if rank == 0:
            torch.save(result, out)
        # no rank closes its connections while another may still be reading its last message
        dist.barrier()
    except BaseException:
        Path(f"{out}.rank{rank}.err").write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def train_job(method: str, out_dir: str | None = None, extra: dict | None = None,
              kill: tuple[int, int, int] | None = None, epochs: int = 2, no_ddp: bool = False,
              write_probe: bool = False) -> dict:
    """The trained parameters, the world the Trainer saw, its history and (``write_probe``) the
    files each rank wrote."""
    from r2et_fast.train import _checkpoint, _trainer

    written: list[str] = []
    if write_probe:  # record every write of the trainer's modules on this rank
        for module in (_trainer, _checkpoint):
            for name in ("save_torch", "save_json"):
                if not hasattr(module, name):
                    continue
                real = getattr(module, name)
                setattr(module, name, lambda path, payload, real=real: (written.append(Path(path).name),
                                                                         real(path, payload)))
    model, trainer = fit(config(method, epochs=epochs, **(extra or {})), task(),
                         None if out_dir is None else Path(out_dir), kill=kill, no_ddp=no_ddp)
    writes = [None] * dist.get_world_size() if dist.is_initialized() else [written]
    if dist.is_initialized():
        dist.all_gather_object(writes, written)
    return {"params": flat(model), "world": trainer.world, "history": trainer.history, "writes": writes}


JOBS = {"train": train_job}


def attack_job() -> dict:
    """attack_model's scores and per-sample records on 30 test samples in batches of 8 (4 batches,
    2 per rank), of a model trained the same way on every rank."""
    from r2et_fast.experiments.protocol import AttackConfig, attack_model

    data = task()
    model = fit(config("vanilla", epochs=1), data)[0].eval()
    cfg = AttackConfig(k=3, alpha=0.05, steps=5, eps=0.25, batch_size=8, max_samples=30)
    return attack_model(model, data, cfg, progress=False)


def certify_job(model_path: str, out: str) -> dict:
    """``certify_saved`` of a saved model at three radii (split over the ranks)."""
    from r2et_fast.cli._certify import certify_saved

    payload = certify_saved(model_path, eps=(0.05, 0.1, 0.2), norm="l2", n_samples=6, out=out,
                            progress=False)
    return {"records": payload["records"], "world": dist.get_world_size() if dist.is_initialized() else 1}


JOBS["attack"] = attack_job
JOBS["certify"] = certify_job


def many_job(calls: list[tuple[str, dict]]) -> list:
    """Several jobs in one launch (the processes' start-up is most of a small job's time)."""
    return [JOBS[job](**kwargs) for job, kwargs in calls]


JOBS["many"] = many_job


def cuda_job(distributed: bool = True) -> dict:
    """R2ET on the GPU, wrapped in DDP over a group of one (NCCL): the 1-GPU smoke run."""
    model, trainer = fit(config("r2et", device="cuda"), task(), distributed=distributed)
    return {"params": flat(model).cpu(), "world": trainer.world,
            "ddp": type(trainer.wrapped).__name__, "device": str(next(model.parameters()).device)}


JOBS["cuda"] = cuda_job


# a tiny --quick reproduce with a k grid (the budgets of python_tests/experiments/test_reproduce_progress)
TINY = dict(max_train=300, max_test=8, steps=2, epochs=1, correlation_samples=4, thickness_samples=2,
            thickness_path=2, faithfulness_samples=4, variant_samples=4, variant_steps=2,
            smoothgrad_samples=2, ig_steps=2, selection_steps=2, selection_samples=8, k_grid=(4,),
            n_pairs_grid=(2,), constraints=("none",))


def reproduce_job(out: str) -> dict:
    """``reproduce`` of compas with three methods (two with model selection) into ``out``."""
    from r2et_fast.experiments.reproduce import ReproduceConfig, reproduce

    cfg = ReproduceConfig.quick_defaults(datasets=("compas",), methods=("vanilla", "r2et", "est_h"), out=out,
                                         **TINY)
    return reproduce(cfg, progress=False)


JOBS["reproduce"] = reproduce_job


def thickness_metrics_job() -> dict:
    """topk_thickness in chunks of 8 path points (15 chunks) and COMP / SUFF in blocks of 4
    samples (3 blocks), of a model built the same way on every rank."""
    from r2et_fast.explain import Saliency
    from r2et_fast.metrics import COMP, DFFOT, SUFF, Sensitivity
    from r2et_fast.thickness import topk_thickness

    model = build_model(config("sp"), N_FEATURES, 2).double().eval()
    x = task().x_test[:12]
    thick = topk_thickness(Saliency(model), x, 3, n_samples=5, n_path=2, batch_size=8, seed=1)
    maps = Saliency(model).attribute(x).detach()
    shifted = x + 2.0 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    dffot = DFFOT(batch_size=4).evaluate(model, x, maps)
    return {"thickness": thick.per_sample, "comp": COMP(batch_size=4)(model, x, maps),
            "suff": SUFF(batch_size=4)(model, x, maps), "dffot": dffot.fraction,
            "dffot_flipped": dffot.flipped, "sensitivity": Sensitivity(batch_size=4)(model, x, shifted)}


JOBS["thickness_metrics"] = thickness_metrics_job


def sampler_job(distributed: bool = True) -> dict:
    """R2ET from a DataLoader: over a DistributedSampler (4 rows per rank and step) under a launch,
    or in order with batches of 8 in one process: the same global batches."""
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    cfg = config("r2et")
    data = task()
    rows = TensorDataset(data.x_train[:32], data.y_train[:32])
    if distributed:
        loader = DataLoader(rows, batch_size=4, sampler=DistributedSampler(rows, shuffle=False))
    else:
        loader = DataLoader(rows, batch_size=8, shuffle=False)
    model = build_model(cfg, N_FEATURES, 2).double()
    trainer = Trainer(model, cfg, progress=False)
    trainer.fit(loader)
    return {"params": flat(model), "world": trainer.world}


JOBS["sampler"] = sampler_job
