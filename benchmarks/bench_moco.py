"""Time one MoCo v2 training step: sslkeypoint's MoCoV2 vs a bare loop in the style of lightly's example.

Both sides use the same encoder (a narrow UNetEncoder), the same batch, the same AdamW optimizer and
lightly's own head, loss and momentum helpers. The bare loop is lightly's MoCo example: momentum
update, query = head(pool(encoder(x))), key = momentum copy without gradient, NTXentLoss with a
memory bank, backward, step — with no batch-norm shuffling. MoCoV2 is timed in three variants:
default (key encoder over ``split_bn`` sub-batches after a random permutation), ``split_bn=1``
(permutation only) and with group masking (stage 2's sequence ids).

Variants run interleaved, in rotating order, and each reports the median step time; ratios are to
the bare loop measured in the same run. CPU timings; the machine is shared, so read the ratios.

Usage::

    python benchmarks/bench_moco.py            # 96 px, batch 32, 30 steps per variant
    python benchmarks/bench_moco.py --quick    # 64 px, batch 16, 8 steps per variant
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import cpu_model
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import Tensor, nn

from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.ssl.moco import MoCoV2


class Pooled(nn.Module):
    """The encoder's deepest map, average pooled: the bare loop's backbone."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)[-1].mean(dim=(-2, -1))


def bare_step_factory(encoder: nn.Module, dim: int, queue: int, lr: float) -> Callable[[Tensor, Tensor], float]:
    """lightly's MoCo example loop, as a closure doing one step."""
    backbone = Pooled(encoder)
    head = MoCoProjectionHead(dim, dim, 128)
    backbone_m, head_m = copy.deepcopy(backbone), copy.deepcopy(head)
    deactivate_requires_grad(backbone_m)
    deactivate_requires_grad(head_m)
    criterion = NTXentLoss(temperature=0.2, memory_bank_size=(queue, 128))
    opt = torch.optim.AdamW(list(backbone.parameters()) + list(head.parameters()), lr=lr)

    def step(x_query: Tensor, x_key: Tensor) -> float:
        update_momentum(backbone, backbone_m, m=0.999)
        update_momentum(head, head_m, m=0.999)
        query = head(backbone(x_query))
        key = head_m(backbone_m(x_key)).detach()
        loss = criterion(query, key)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.detach())

    return step


def moco_step_factory(
    encoder: nn.Module, queue: int, lr: float, split_bn: int, groups: Tensor | None
) -> Callable[[Tensor, Tensor], float]:
    """The same step through MoCoV2."""
    model = MoCoV2(encoder, queue_size=queue, split_bn=split_bn)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    def step(x_query: Tensor, x_key: Tensor) -> float:
        model.update_momentum()
        loss = model(x_query, x_key, groups)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.detach())

    return step



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small and short")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "moco.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size, batch, steps, warmup = (64, 16, 8, 2) if args.quick else (96, 32, 30, 3)
    widths, bottleneck, queue, lr = (16, 32, 64, 128), 256, 4096, 1e-3

    base = UNetEncoder(in_chans=1, widths=widths, bottleneck_width=bottleneck)
    x_query, x_key = torch.rand(batch, 1, size, size), torch.rand(batch, 1, size, size)
    groups = torch.arange(batch) % 4
    variants: dict[str, Callable[[Tensor, Tensor], float]] = {
        "bare lightly loop": bare_step_factory(copy.deepcopy(base), bottleneck, queue, lr),
        "MoCoV2 (split_bn=8)": moco_step_factory(copy.deepcopy(base), queue, lr, 8, None),
        "MoCoV2 (split_bn=1)": moco_step_factory(copy.deepcopy(base), queue, lr, 1, None),
        "MoCoV2 (split_bn=8, groups)": moco_step_factory(copy.deepcopy(base), queue, lr, 8, groups),
    }
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + steps):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            variants[name](x_query, x_key)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)

    ref = statistics.median(times[names[0]])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"variant": name, "median_ms": 1e3 * med, "ratio_to_bare": med / ref})
    print(f"MoCo v2 step, UNetEncoder widths {widths} + {bottleneck}, 1 channel, {size} px, batch {batch},")
    print(f"queue {queue}, AdamW; {steps} steps each, interleaved; {args.threads} thread(s) on {cpu_model()}")
    print(f"{'variant':<30}{'median ms':>12}{'ratio':>9}")
    for r in rows:
        print(f"{r['variant']:<30}{r['median_ms']:>12.1f}{r['ratio_to_bare']:>9.3f}")
    result = {
        "benchmark": "moco_step",
        "quick": args.quick,
        "hardware": {"cpu": cpu_model(), "threads": args.threads, "device": "cpu"},
        "setup": {
            "image_size": size,
            "batch": batch,
            "widths": list(widths),
            "bottleneck_width": bottleneck,
            "queue": queue,
            "steps": steps,
        },
        "torch": str(torch.__version__),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
