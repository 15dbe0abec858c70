"""Reference for r1kit's FP8 weights (policy/fp8.h), written from DeepSeek-V3's release notes
(README_WEIGHTS: e4m3, one fp32 weight_scale_inv per 128x128 block, zero-padded edge blocks;
the release kernel's scale rule amax / 448) with torch's float8_e4m3fn.

usage: fp8_reference.py ORIGINAL_DIR FP8_DIR OUT.safetensors
For every `X.weight` that FP8_DIR stores in FP8 (with `X.weight_scale_inv`): quantises
ORIGINAL_DIR's `X.weight` here and checks that r1kit's bytes (weight and scale) are the same
bit for bit; writes this reference's dequantised weight (block x scale_inv, fp32) as `X.weight`
into OUT. Exits 1 naming the first tensor that differs.
"""
import sys

import torch
from safetensors.torch import load_file, save_file

BLOCK, E4M3_MAX = 128, 448.0


def quantize(w: torch.Tensor):
    w = w.float()
    out, inn = w.shape
    ob, ib = -(-out // BLOCK), -(-inn // BLOCK)
    padded = torch.zeros(ob * BLOCK, ib * BLOCK)
    padded[:out, :inn] = w
    amax = padded.view(ob, BLOCK, ib, BLOCK).abs().amax(dim=(1, 3))
    scale_inv = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    per_element = scale_inv.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:out, :inn]
    return (w / per_element).to(torch.float8_e4m3fn), scale_inv


def dequantize(q: torch.Tensor, scale_inv: torch.Tensor) -> torch.Tensor:
    out, inn = q.shape
    return q.float() * scale_inv.float().repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:out, :inn]


def main() -> None:
    original_dir, fp8_dir, out_path = sys.argv[1:4]
    original = load_file(f"{original_dir}/model.safetensors")
    fp8 = load_file(f"{fp8_dir}/model.safetensors")
    reference = {}
    for name, q in fp8.items():
        if q.dtype != torch.float8_e4m3fn:
            continue
        scale = fp8[name + "_scale_inv"]
        ref_q, ref_scale = quantize(original[name])
        if not torch.equal(ref_q.view(torch.uint8), q.view(torch.uint8)):
            sys.exit(f"fp8_reference: {name}: r1kit's e4m3 bytes differ from the reference's")
        if not torch.equal(ref_scale, scale):
            sys.exit(f"fp8_reference: {name}_scale_inv differs from the reference's")
        reference[name] = dequantize(ref_q, ref_scale).contiguous()
    if not reference:
        sys.exit("fp8_reference: no FP8 tensor in " + fp8_dir)
    save_file(reference, out_path)
    print(f"fp8_reference: {len(reference)} FP8 tensors equal bit for bit", file=sys.stderr)


if __name__ == "__main__":
    main()
