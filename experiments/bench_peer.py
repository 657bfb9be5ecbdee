"""Times a PyTorch peer's Gated PixelCNN or PixelSNAIL train step on CPU (run with the peer's own Python).

    /path/to/torch-venv/bin/python experiments/bench_peer.py --peer_src=/path/to/pytorch-generative \
        --layers=5 --features=32 --head=32 --batch=64 --steps=10
    /path/to/torch-venv/bin/python experiments/bench_peer.py --peer_src=/path/to/pytorch-generative \
        --model=pixelsnail --blocks=8 --res=2 --features=64 --key=4 --value=32 --batch=32 --steps=10

The peer is EugenHotaj/pytorch-generative, kept OUTSIDE this repository with torch in
a separate virtual environment (neither is a dependency of dgm_jax). Its
``GatedPixelCNN(n_gated=L, gated_channels=F, head_channels=head)`` or
``PixelSNAIL(n_channels=F, n_pixel_snail_blocks=blocks, n_residual_blocks=res,
attention_key_channels=key, attention_value_channels=value)`` is loaded from
its source files without importing the rest of its package (datasets, trainer),
and one Adam step on a binary batch [B, 1, 28, 28] with the Bernoulli NLL
(binary_cross_entropy_with_logits, summed per image) is timed: median over
--steps after --warmup; then the evaluation (the same NLL per image, torch.no_grad, eval mode). Prints one JSON line: parameters, images/s, step seconds.
experiments/bench_vs_peer.py runs this and dgm_jax's benchmark in the same run.
"""
import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path


PEER_MODULES = {"gated": "gated_pixel_cnn", "pixelsnail": "pixel_snail"}


def load_peer(src: Path, model: str = "gated"):
    """pytorch_generative.models.autoregressive.<gated_pixel_cnn | pixel_snail> from src, with only the
    modules it needs."""
    root = src / "pytorch_generative"
    for name, path in (("pytorch_generative", root), ("pytorch_generative.models", root / "models"),
                       ("pytorch_generative.models.autoregressive", root / "models" / "autoregressive")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=None)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    nn_pkg = importlib.util.spec_from_file_location("pytorch_generative.nn", root / "nn" / "__init__.py",
                                                    submodule_search_locations=[str(root / "nn")])
    mod = importlib.util.module_from_spec(nn_pkg)
    sys.modules["pytorch_generative.nn"] = mod
    nn_pkg.loader.exec_module(mod)
    sys.modules["pytorch_generative"].nn = mod
    base = load("pytorch_generative.models.base", root / "models" / "base.py")
    sys.modules["pytorch_generative.models"].base = base
    name = PEER_MODULES[model]
    return load(f"pytorch_generative.models.autoregressive.{name}", root / "models" / "autoregressive" / f"{name}.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer_src", required=True)
    ap.add_argument("--model", choices=sorted(PEER_MODULES), default="gated")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--head", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=8, help="pixelsnail: PixelSNAIL blocks")
    ap.add_argument("--res", type=int, default=2, help="pixelsnail: residual blocks per PixelSNAIL block")
    ap.add_argument("--key", type=int, default=4, help="pixelsnail: attention key channels")
    ap.add_argument("--value", type=int, default=32, help="pixelsnail: attention value channels")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    import torch
    import torch.nn.functional as F

    peer = load_peer(Path(args.peer_src), args.model)
    torch.manual_seed(0)
    if args.model == "gated":
        model = peer.GatedPixelCNN(in_channels=1, out_channels=1, n_gated=args.layers,
                                   gated_channels=args.features, head_channels=args.head)
        size = {"layers": args.layers, "features": args.features, "head": args.head}
    else:
        model = peer.PixelSNAIL(in_channels=1, out_channels=1, n_channels=args.features,
                                n_pixel_snail_blocks=args.blocks, n_residual_blocks=args.res,
                                attention_key_channels=args.key, attention_value_channels=args.value)
        size = {"blocks": args.blocks, "res": args.res, "features": args.features, "key": args.key,
                "value": args.value}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(args.batch, 1, 28, 28) < 0.2).float()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]

    # Evaluation: the per-image NLL of the batch, no gradient (as dgm_jax's eval step).
    model.eval()
    with torch.no_grad():
        evaluate = lambda: F.binary_cross_entropy_with_logits(  # noqa: E731
            model(x), x, reduction="none").sum((1, 2, 3))
        for _ in range(args.warmup):
            evaluate()
        eval_times = []
        for _ in range(max(3, args.steps // 2)):
            t = time.perf_counter()
            evaluate()
            eval_times.append(time.perf_counter() - t)
    eval_med = sorted(eval_times)[len(eval_times) // 2]
    print(json.dumps({"peer": f"pytorch-generative {type(model).__name__}", "torch": torch.__version__,
                      "threads": torch.get_num_threads(), **size, "batch": args.batch,
                      "num_params": sum(p.numel() for p in model.parameters()),
                      "train_step_s": med, "train_images_per_s": args.batch / med,
                      "eval_images_per_s": args.batch / eval_med}))


if __name__ == "__main__":
    main()
