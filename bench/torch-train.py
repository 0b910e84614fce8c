"""PyTorch's pace on the same training work as `facemtl bench train` (BENCHMARKS.md "Training
speed"), and on the same network forward only (`--mode inference`, eval mode, no autograd):
faceres's network rebuilt in PyTorch ("faceres-eq": MobileNet-v1 with its batch norms folded
into biases, ReLU6), the same multi-task head (shared FC 512 with LeakyReLU and batch
norm; per task FC 128, dropout 0.5, FC), the same losses (cross-entropy; half the squared error
of the normalised age) and Adam (lr 3e-5, weight decay 1e-5), on random inputs of the same
shapes. A reference for the benchmark only: nothing of facemtl needs PyTorch.

Usage (PyTorch from PyPI in a venv under $FACEMTL_CACHE, see bench/cpu-train.sh):
    python bench/torch-train.py --mode full|blocks|head|inference [--tune-blocks K] --batch N
        [--steps S] [--warmup W] [--channels-last] [--threads T] [--breakdown]
Prints one JSON line: the configuration, images per second and the step time; with
`--breakdown`, also the milliseconds a step spends in each layer kind forward and backward
(each ReLU6 counted with the convolution before it, as facemtl's fused layers hold it) and in
Adam, from as many more steps timed layer by layer.
"""

import argparse
import json
import time
from collections import defaultdict

import torch
from torch import nn

# Output channels and depthwise stride of faceres's 13 depthwise-separable blocks.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
TASKS = [("gender", 2), ("age", 1), ("race", 5)]


def block(channels, out, stride):
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, stride, 1, groups=channels),
        nn.ReLU6(),
        nn.Conv2d(channels, out, 1),
        nn.ReLU6(),
    )


def backbone(first_block):
    """The blocks from `first_block` on (0: the stem too), ending in the global average."""
    layers = [nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU6()] if first_block == 0 else []
    channels = 32 if first_block == 0 else BLOCKS[first_block - 1][0]
    for out, stride in BLOCKS[first_block:]:
        layers.append(block(channels, out, stride))
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(1024, 512), nn.LeakyReLU(0.01), nn.BatchNorm1d(512))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(512, 128), nn.LeakyReLU(0.01), nn.Dropout(0.5), nn.Linear(128, outputs)) for _, outputs in TASKS
        )
        # The Loss Weight Layer: one weight per task, kept positive and summing to 1.
        self.loss_weights = nn.Parameter(torch.zeros(len(TASKS)))

    def forward(self, features):
        shared = self.shared(features)
        return [head(shared) for head in self.heads]


def cut_shape(tuned):
    """Channels and side of the activations entering the last `tuned` blocks."""
    side, channels = 112, 32
    for out, stride in BLOCKS[: len(BLOCKS) - tuned]:
        side, channels = -(-side // stride), out
    return channels, side


def layer_kind(conv):
    if conv.in_channels == 3:
        return "stem"
    return "depthwise" if conv.groups > 1 else "1x1"


def time_layers(body, totals):
    """Hooks that add each convolution's time (with the ReLU6 after it) forward and backward
    to `totals`, keyed "kind forward" / "kind backward"."""
    started = {}
    kind = None

    def start(key):
        def hook(*_):
            started[key] = time.perf_counter()

        return hook

    def stop(key):
        def hook(*_):
            if key in started:
                totals[key] += time.perf_counter() - started.pop(key)

        return hook

    for index, module in enumerate(m for m in body.modules() if isinstance(m, (nn.Conv2d, nn.ReLU6))):
        if isinstance(module, nn.Conv2d):
            kind = layer_kind(module)
        forward, backward = f"{kind} forward", f"{kind} backward"
        module.register_forward_pre_hook(start(forward))
        module.register_forward_hook(stop(forward))
        module.register_full_backward_pre_hook(start(backward))
        if index == 0:
            # Its input needs no gradient: its backward ends with its weight's.
            module.weight.register_post_accumulate_grad_hook(stop(backward))
        else:
            module.register_full_backward_hook(stop(backward))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["full", "blocks", "head", "inference"], default="full")
    parser.add_argument("--tune-blocks", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a lent GPU (bench/gpu-finetune.sh)")
    parser.add_argument("--breakdown", action="store_true", help="also time each layer kind (CPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)

    n = args.batch
    if args.mode in ("full", "inference"):
        body, shape = backbone(0), (n, 3, 224, 224)
    elif args.mode == "blocks":
        channels, side = cut_shape(args.tune_blocks)
        body, shape = backbone(len(BLOCKS) - args.tune_blocks), (n, channels, side, side)
    else:
        body, shape = nn.Identity(), (n, 1024)
    head = Head()
    model = nn.ModuleDict({"body": body, "head": head})
    memory = torch.channels_last if args.channels_last and len(shape) == 4 else torch.contiguous_format
    model = model.to(device)
    model = model.to(memory_format=memory) if memory != torch.contiguous_format else model
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-5, weight_decay=1e-5)
    inputs = [
        (torch.randn(shape).to(memory_format=memory) if len(shape) == 4 else torch.randn(shape)).to(device)
        for _ in range(2)
    ]
    targets = [
        [t.to(device) for t in [torch.arange(n) % 2, torch.rand(n, 1), torch.arange(n) % 5]],
        [t.to(device) for t in [(torch.arange(n) + 1) % 2, torch.rand(n, 1), (torch.arange(n) + 1) % 5]],
    ]

    def wait():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(i):
        x, (gender, age, race) = inputs[i % 2], targets[i % 2]
        outputs = head(body(x))
        losses = [
            nn.functional.cross_entropy(outputs[0], gender),
            0.5 * ((outputs[1] - age) ** 2).mean(),
            nn.functional.cross_entropy(outputs[2], race),
        ]
        weights = torch.softmax(head.loss_weights, 0)
        total = (weights * torch.stack(losses)).sum() + 0.1 * (weights**2).sum()
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()

    def forward(i):
        with torch.inference_mode():
            head(body(inputs[i % 2]))

    if args.mode == "inference":
        model.eval()
        step = forward
    else:
        model.train()
    for i in range(args.warmup):
        step(i)
    wait()
    started = time.perf_counter()
    for i in range(args.steps):
        step(i)
    wait()
    seconds = time.perf_counter() - started
    breakdown = None
    if args.breakdown:
        # After the timed steps: the hooks' own cost stays out of the pace above.
        totals = defaultdict(float)
        time_layers(body, totals)
        plain_step = optimiser.step

        def timed_step(*a, **k):
            begun = time.perf_counter()
            plain_step(*a, **k)
            totals["adam"] += time.perf_counter() - begun

        optimiser.step = timed_step
        begun = time.perf_counter()
        for i in range(args.steps):
            step(i)
        totals["step"] = time.perf_counter() - begun
        breakdown = {key: round(1e3 * value / args.steps, 1) for key, value in sorted(totals.items())}
    print(
        json.dumps(
            {
                "mode": args.mode,
                "tune_blocks": args.tune_blocks if args.mode == "blocks" else None,
                "batch": n,
                "layout": "channels-last" if memory == torch.channels_last else "NCHW",
                "threads": args.threads,
                "device": args.device,
                "torch": torch.__version__,
                "images_per_second": n * args.steps / seconds,
                "step_ms": 1e3 * seconds / args.steps,
                "breakdown_ms": breakdown,
            }
        )
    )


if __name__ == "__main__":
    main()
