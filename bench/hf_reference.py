#!/usr/bin/env python3
"""The Hugging Face side of `qa-train bench`, for a same-run ratio on a GPU machine (or CPU):
T5ForConditionalGeneration with the shapes of `qa-train bench --shape` (random init, dropout 0,
gated-gelu, untied head), bf16 autocast or fp32, torch.optim.AdamW, eager mode. It times training
steps (forward, backward, clip to norm 1, AdamW step; median after one warm-up step) and greedy
generation of exactly --tgt-len tokens per row with the KV cache, on random tokens, and prints one
JSON line with the field names qa-train bench uses.

  python3 bench/hf_reference.py --shape flan-t5-base --batch 32 --src-len 512 --tgt-len 64 \\
      --steps 10 --device cuda --precision bf16

Needs torch and transformers (the GPU machine's Python has both; scripts/cpu-check.sh says how to run it on the
CPU here). Not run by the tests or CI.
"""
import argparse
import json
import resource
import statistics
import time

import torch
from transformers import T5Config, T5ForConditionalGeneration

SHAPES = {  # as src/cli/bench_command.cpp shape_config()
    "flan-t5-small": dict(d_model=512, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6, d_kv=64, vocab_size=32128),
    "flan-t5-base": dict(d_model=768, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12, d_kv=64, vocab_size=32128),
    "demo": dict(d_model=128, d_ff=256, num_layers=4, num_decoder_layers=2, num_heads=4, d_kv=32, vocab_size=2000),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--src-len", type=int, default=256)
    ap.add_argument("--tgt-len", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: PyTorch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    cfg = T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[a.shape])
    model = T5ForConditionalGeneration(cfg)
    with torch.no_grad():  # as qa-train: a new untied head gets std d_model^-0.5, not HF's 1.0
        model.lm_head.weight.normal_(0.0, cfg.d_model ** -0.5)
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(3, cfg.vocab_size, (a.batch, a.src_len), device=dev)
    mask = torch.ones_like(ids)
    labels = torch.randint(3, cfg.vocab_size, (a.batch, a.tgt_len), device=dev)
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def step():
        sync()
        t0 = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        return time.perf_counter() - t0

    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    times = [step() for _ in range(a.steps + 1)][1:]
    ms = 1000 * statistics.median(times)
    # as qa-train: the allocator peak on CUDA, the process's peak RSS on CPU
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model.eval()
    with torch.no_grad(), autocast:
        sync()
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=a.tgt_len, min_new_tokens=a.tgt_len,
                             do_sample=False, num_beams=1, use_cache=True)
        sync()
        gen = time.perf_counter() - t0
    tokens = a.batch * (a.src_len + a.tgt_len)
    print(json.dumps({
        "impl": "transformers " + __import__("transformers").__version__ + ", torch " + torch.__version__,
        "shape": a.shape, "batch": a.batch, "src_len": a.src_len, "tgt_len": a.tgt_len, "device": str(dev),
        "precision": a.precision, "ms_per_step": ms, "tokens_per_sec": tokens / (ms / 1000), "peak_mem_mb": peak,
        "gen_tokens_per_sec": a.batch * (out.shape[1] - 1) / gen,
    }))


if __name__ == "__main__":
    main()
