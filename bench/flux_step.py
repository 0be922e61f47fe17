"""A FLUX sampler step through our call vs diffusers' transformer forward (expect <= 1.00x).

Our side is a whole euler step of `sample()` on a FLUX MODEL handle at cfg 1: the guided
denoiser, `FluxCall` (2x2 packing, position ids, guidance) and the sampler arithmetic. The
baseline is `FluxTransformer2DModel.forward` alone on the same shapes with inputs packed in
advance, what FluxPipeline's loop calls once per step. The difference is our overhead; it
should be lost in the noise (a ratio of about 1.00). Both run the same module, timed
interleaved in the same run.

The default transformer is the tiny one the tests use, widened to 256 (4 heads of 64) with
4 double and 8 single blocks so that the network, not Python, dominates; `--full` uses
FLUX.1's real structure (3072 wide, 19 + 38 blocks: a GPU job). Weights are random.

On the CPU both sides are also timed in process CPU time (all threads): on a shared machine
other processes stretch wall-clock time by whatever share of the cores they take (2-4x here,
differently per round), while the CPU time a step costs barely moves, so its ratio is the
one to read there (with `--threads 1`: idle worker threads spin and bill CPU time when
they wait for cores); on CUDA the wall-clock ratio is the one that counts.

    .venv/bin/python -m bench.flux_step [--size 256] [--steps 4] [--full] [--device cuda]
                                        [--threads 1]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import torch

from latentloom.models.flux_call import image_ids, pack
from latentloom.models.flux_keys import rope_axes
from latentloom.models.flux_model import flux_diffusion_model
from latentloom.models.handles import Conditioning, ConditioningEntry
from latentloom.sampling.run import sample


def transformer(full: bool, device: torch.device, dtype: torch.dtype) -> Any:
    from diffusers import FluxTransformer2DModel

    heads, head_dim, double, single, text, pooled = (
        (24, 128, 19, 38, 4096, 768) if full else (4, 64, 4, 8, 256, 128)
    )
    torch.manual_seed(0)
    module: Any = FluxTransformer2DModel(
        in_channels=64,
        num_layers=double,
        num_single_layers=single,
        attention_head_dim=head_dim,
        num_attention_heads=heads,
        joint_attention_dim=text,
        pooled_projection_dim=pooled,
        guidance_embeds=True,
        axes_dims_rope=rope_axes(head_dim),
    )
    return module.eval().requires_grad_(False).to(device, dtype)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=256, help="text tokens (T5 padding)")
    parser.add_argument("--full", action="store_true", help="FLUX.1's real structure")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    module = transformer(args.full, device, dtype)
    config = module.config
    model = flux_diffusion_model(module, "bench-flux")
    embeds = torch.randn(1, args.tokens, config.joint_attention_dim)
    pooled = torch.randn(1, config.pooled_projection_dim)
    cond = Conditioning((ConditioningEntry(embeds, pooled, guidance=3.5),))
    side = args.size // 8
    latent = torch.zeros(1, 16, side, side)

    def ours() -> None:
        sample(model, cond, cond, latent, seed=0, steps=args.steps, cfg=1.0,
               sampler="euler", scheduler="simple", device=device)  # fmt: skip

    inputs = {
        "hidden_states": pack(torch.randn(1, 16, side, side)).to(device, dtype),
        "encoder_hidden_states": embeds.to(device, dtype),
        "pooled_projections": pooled.to(device, dtype),
        "timestep": torch.tensor([0.5], device=device),
        "img_ids": image_ids(side, side, device, dtype),
        "txt_ids": torch.zeros(args.tokens, 3, device=device, dtype=dtype),
        "guidance": torch.tensor([3.5], device=device),
        "return_dict": False,
    }

    def theirs() -> None:
        with torch.inference_mode():  # as our sampling runs
            for _ in range(args.steps):
                module(**inputs)

    ours()  # warm-up
    theirs()
    our_times, their_times = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        their_times.append(timed(theirs, device))
        our_times.append(timed(ours, device))
    ours_s, theirs_s = (min(wall for wall, _ in t) / args.steps for t in (our_times, their_times))
    ours_cpu, theirs_cpu = (min(cpu for _, cpu in t) / args.steps for t in (our_times, their_times))
    kind = "FLUX.1 structure" if args.full else "tiny FLUX (256 wide, 4 + 8 blocks)"
    print(
        f"FLUX step, {kind}, {args.size}x{args.size}, {args.tokens} text tokens, cfg 1, "
        f"{args.device}, best of {args.rounds} x {args.steps} steps"
    )
    print(f"  diffusers transformer forward {theirs_s * 1000:8.2f} ms (baseline)")
    print(f"  our euler step (FluxCall)     {ours_s * 1000:8.2f} ms")
    print(f"  ratio: {ours_s / theirs_s:.3f} (expect <= 1.00)")
    if device.type == "cpu":
        print(f"  CPU time per step: {theirs_cpu * 1000:.2f} ms vs ours {ours_cpu * 1000:.2f} ms")
        print(
            f"  CPU-time ratio: {ours_cpu / theirs_cpu:.3f} (expect <= 1.00; read this one on a busy machine)"
        )


def timed(action: Any, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of `action`."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started, started_cpu = time.perf_counter(), time.process_time()
    action()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - started_cpu


if __name__ == "__main__":
    main()
