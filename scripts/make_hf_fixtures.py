#!/usr/bin/python3
"""Write the Hugging Face reference fixtures tests/fixtures/hf-t5-relu-tied,
tests/fixtures/hf-t5-gated-silu and tests/fixtures/hf-flan-tiny-sharded-bf16.

The outputs are committed; neither the tests nor CI run this script.  It is kept so that the
fixtures can be audited and regenerated.

Needs
  - Python with PyTorch (1.13 was used), numpy and sentencepiece: on this machine /usr/bin/python3
    (plus Debian's python3-packaging, python3-regex, python3-tqdm, python3-filelock, which
    transformers imports).
  - The transformers v4.35.2 *source* (upstream commit 514de24abfd4416aeba6a6455ad5920f57f3567d),
    e.g. `git archive v4.35.2 src` of a transformers mirror extracted so that
    $HF_SRC/transformers/__init__.py exists.
  - Stand-ins for the PyPI-only packages transformers imports (huggingface_hub, safetensors,
    tokenizers): env HF_STUBS, default /work/shared/peer/stubs (its safetensors stub writes the
    real safetensors format with ../st_format.py).
  - tests/fixtures/hf-flan-tiny/ (its spiece.model is copied, its weights are re-saved as bf16
    shards, and its reference.json is used by --check-flan).

Run (from anywhere):
  HF_SRC=/tmp/hf/transformers/src /usr/bin/python3 scripts/make_hf_fixtures.py
        [--only hf-t5-relu-tied|hf-t5-gated-silu|hf-flan-tiny-sharded-bf16]... [--out DIR]
        [--check-flan] [--threads N]
  --check-flan recomputes hf-flan-tiny's reference.json with this script's code and compares it
  field by field (it proves that the code below reproduces the committed format and numbers).

Everything is deterministic (a rerun writes byte-identical files): fixed seeds, float32 on CPU.
Weights are drawn with a torch.Generator after HF's own init and are deliberately large (layer
norms 1 + 0.5*N(0,1), attention scores q.k + position bias with std ~2-3, logits up to ~+-10..14)
so that a wrong scale, bucket, mask or norm in a re-implementation shows up as a large difference;
the eos row of the output projection is shifted so that some generated rows finish early (see
FIXTURE_SPECS).  The greedy and beam decisions are checked to be robust to rounding: the smallest
greedy top-1/top-2 logit gap must be >= 1e-3, generation with the float64 model must give the same
ids, and generation with +-5e-4 random noise added to every step's scores (40 trials) must give the
same ids; otherwise the script exits with status 1 and the fixture's seed must be changed.

Without the real `tokenizers` package, transformers 4.35.2's fallback AddedToken class breaks the slow
T5Tokenizer; patch_added_token() fixes that in-process (nothing on disk is changed).
"""
import argparse
import copy
import json
import math
import os
import shutil
import sys
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
FLAN = os.path.join(FIXTURES, "hf-flan-tiny")
HF_SRC = os.environ.get("HF_SRC", "/tmp/hf/transformers/src")
HF_STUBS = os.environ.get("HF_STUBS", "/work/shared/peer/stubs")
TRANSFORMERS_COMMIT = "514de24abfd4416aeba6a6455ad5920f57f3567d"

# The same example inputs as hf-flan-tiny/reference.json.
EXAMPLES = [
    ("What color is the sky?", "The sky is blue on a clear day.", "blue"),
    ("Who wrote the letter?", "Anna wrote the letter to her brother in Paris.", "Anna"),
    ("How many apples did Tom buy?", "Tom went to the market and bought seven apples and two pears.", "seven apples"),
]
PADDED_BATCH = [
    ("Where is the cat?", "The cat sleeps under the old table.", "under the table"),
    ("When does the train leave?",
     "The morning train leaves at nine from the north station, and the evening train leaves at six.", "at nine"),
]

ARCH = dict(
    d_model=64, d_ff=128, num_layers=2, num_decoder_layers=3, num_heads=4, d_kv=16,
    relative_attention_num_buckets=32, relative_attention_max_distance=128, vocab_size=200,
    dropout_rate=0.0, layer_norm_epsilon=1e-6, initializer_factor=1.0, is_encoder_decoder=True,
    use_cache=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)

# Weight scales, as multiples of HF's own init std (T5PreTrainedModel._init_weights):
#   q: (d_model*d_kv)^-0.5, k/v: d_model^-0.5, o: (heads*d_kv)^-0.5, wi*: d_model^-0.5,
#   wo: d_ff^-0.5, lm_head: d_model^-0.5; shared and relative_attention_bias: absolute std.
# Layer norms are always 1 + 0.5*N(0,1).
# The tied model needs sublayer outputs much larger than its embeddings: the decoder input token's
# own embedding stays in the residual stream and, through the tied output projection, makes a random
# model repeat its input token forever; with o/wo large the residual is dominated by the sublayers.
# eos_gap: random models almost never predict eos, so the eos row of the output projection
# (lm_head.weight[1], i.e. shared.weight[1] when tied) gets an added component along the mean decoder
# output over the fixture's own teacher-forced inputs, so that eos's mean logit equals the largest
# mean logit minus eos_gap: some greedy/beam rows then finish early (ragged batch, finished beams).
FIXTURE_SPECS = {
    "hf-t5-relu-tied": dict(
        preset="t5-relu-tied",
        config=dict(feed_forward_proj="relu", tie_word_embeddings=True),
        seed=1,
        scales=dict(q=1.2, kv=1.5, o=15.0, wi=1.5, wo=20.0, shared=3.0, rel_bias=1.0),
        eos_gap=0.0,
    ),
    "hf-t5-gated-silu": dict(
        preset="t5-gated-silu",
        config=dict(feed_forward_proj="gated-silu", tie_word_embeddings=False),
        seed=1,
        scales=dict(q=1.2, kv=1.5, o=2.0, wi=1.5, wo=2.0, shared=1.0, rel_bias=1.0, lm_head=2.5),
        eos_gap=0.0,
    ),
}
BF16_NAME = "hf-flan-tiny-sharded-bf16"
BF16_MAX_SHARD = "200KB"  # 565 KB of bf16 weights -> 3 shards

GEN_MAX_NEW = 8
MIN_GREEDY_MARGIN = 1e-3
NOISE = 5e-4
NOISE_TRIALS = 40


# ----------------------------------------------------------------------------------------------
# imports

def import_hf(threads):
    if not os.path.isfile(os.path.join(HF_SRC, "transformers", "__init__.py")):
        sys.exit(f"transformers source not found: HF_SRC={HF_SRC!r} (see the docstring)")
    if not os.path.isdir(os.path.join(HF_STUBS, "safetensors")):
        sys.exit(f"stub packages not found: HF_STUBS={HF_STUBS!r} (see the docstring)")
    for p in (HF_SRC, HF_STUBS):
        if p not in sys.path:
            sys.path.insert(0, p)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    global torch, np, spm, transformers, T5Config, T5ForConditionalGeneration, T5Tokenizer, T5Attention
    global LogitsProcessor, LogitsProcessorList
    import numpy as np
    import sentencepiece as spm
    import torch
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers
        from transformers import LogitsProcessor, LogitsProcessorList
        from transformers.models.t5.configuration_t5 import T5Config
        from transformers.models.t5.modeling_t5 import T5Attention, T5ForConditionalGeneration
        from transformers.models.t5.tokenization_t5 import T5Tokenizer
    transformers.utils.logging.set_verbosity_error()
    patch_added_token()
    if transformers.__version__ != "4.35.2":
        sys.exit(f"expected transformers 4.35.2, found {transformers.__version__}")


def patch_added_token():
    """transformers 4.35.2 without the `tokenizers` package falls back to a dataclass AddedToken
    (tokenization_utils_base.py) that the slow tokenizers cannot use: it is unhashable (eq=True) ->
    "TypeError: unhashable type: 'AddedToken'" (cf. huggingface/transformers#30696), and it has no
    __setstate__ -> AttributeError in PreTrainedTokenizer._add_tokens.  Give the fallback what the
    real tokenizers.AddedToken has: a hash of its content and __setstate__ (in this process only)."""
    from transformers import tokenization_utils_base as tub
    cls = tub.AddedToken
    if getattr(cls, "__module__", "").startswith("tokenizers"):
        return  # the real package: nothing to do
    if getattr(cls, "__hash__", None) is None:
        cls.__hash__ = lambda self: hash(self.content)
    if not hasattr(cls, "__setstate__"):
        cls.__setstate__ = lambda self, state: self.__dict__.update(state)


# ----------------------------------------------------------------------------------------------
# JSON helpers (floats: float32 printed with <= 9 significant digits = exact float32 round trip)

def f9(x):
    return float("%.9g" % float(x))


def f9_nested(x):
    if isinstance(x, list):
        return [f9_nested(v) for v in x]
    return f9(x)


def tensor_summary(t):
    t = t.detach().to(torch.float32).cpu()
    flat = t.reshape(-1)
    return {
        "shape": list(t.shape),
        "first_values": [f9(v) for v in flat[:8].tolist()],
        "sum": t.double().sum().item(),
        "abs_sum": t.double().abs().sum().item(),
        "values": f9_nested(t.tolist()),
    }


def dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------
# models

def make_config(spec_config):
    kw = dict(ARCH)
    kw.update(spec_config)
    cfg = T5Config(**kw)
    cfg.architectures = ["T5ForConditionalGeneration"]
    return cfg


def draw_weights(model, seed, sc):
    """Overwrite every parameter with seeded draws (sorted by name; tied ones once)."""
    cfg = model.config
    dm, dkv, h, dff = cfg.d_model, cfg.d_kv, cfg.num_heads, cfg.d_ff
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("layer_norm.weight"):
                v = 1.0 + 0.5 * z
            elif name.endswith("relative_attention_bias.weight"):
                v = sc["rel_bias"] * z
            elif name == "shared.weight":
                v = sc["shared"] * z
            elif name == "lm_head.weight":
                v = sc["lm_head"] * dm ** -0.5 * z
            elif name.endswith(".q.weight"):
                v = sc["q"] * (dm * dkv) ** -0.5 * z
            elif name.endswith(".k.weight") or name.endswith(".v.weight"):
                v = sc["kv"] * dm ** -0.5 * z
            elif name.endswith(".o.weight"):
                v = sc["o"] * (h * dkv) ** -0.5 * z
            elif ".wi" in name:
                v = sc["wi"] * dm ** -0.5 * z
            elif name.endswith(".wo.weight"):
                v = sc["wo"] * dff ** -0.5 * z
            else:
                raise RuntimeError(f"no init rule for {name}")
            p.copy_(v)


def calibrate_eos(model, inp, gap):
    """Add to the eos row of the output projection a multiple of the mean decoder output d (input of
    lm_head, over all teacher-forced label positions of EXAMPLES and PADDED_BATCH) so that the mean
    eos logit d.w_eos becomes max_v(d.w_v) - gap.  Returns the added vector's norm."""
    captured = []
    hook = model.lm_head.register_forward_hook(lambda mod, args, out: captured.append(args[0].detach()))
    try:
        with torch.no_grad():
            for triples in [[t] for t in EXAMPLES] + [PADDED_BATCH]:
                input_ids, mask, labels = inp.batch(triples)
                model(input_ids=input_ids, attention_mask=mask, labels=labels)
    finally:
        hook.remove()
    rows = []
    for (triples, x) in zip([[t] for t in EXAMPLES] + [PADDED_BATCH], captured):
        labels = inp.batch(triples)[2]
        rows.append(x[labels != -100])
    d = torch.cat(rows).mean(0)
    with torch.no_grad():
        w = model.lm_head.weight  # == shared.weight when tied
        mean_logits = w @ d
        delta = (mean_logits.max() - gap - mean_logits[model.config.eos_token_id]) * d / d.dot(d)
        w[model.config.eos_token_id] += delta
    return delta.norm().item()


def build_model(spec, inp):
    cfg = make_config(spec["config"])
    torch.manual_seed(spec["seed"])
    model = T5ForConditionalGeneration(cfg)
    draw_weights(model, spec["seed"], spec["scales"])
    model.eval()
    if spec.get("eos_gap") is not None:
        calibrate_eos(model, inp, spec["eos_gap"])
    return model


# ----------------------------------------------------------------------------------------------
# inputs

class Inputs:
    def __init__(self, spiece_path):
        self.sp = spm.SentencePieceProcessor(model_file=spiece_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tok = T5Tokenizer(spiece_path, extra_ids=0, legacy=True)

    def encode(self, text):
        ids = self.sp.encode_as_ids(text) + [1]
        hf = self.tok(text).input_ids
        if hf != ids:
            raise RuntimeError(f"HF T5Tokenizer and sentencepiece disagree on {text!r}: {hf} vs {ids}")
        return ids

    def pieces(self, text):
        return self.sp.encode_as_pieces(text) + ["</s>"]

    def batch(self, triples):
        """Right-padded input_ids/attention_mask (pad 0), labels padded with -100."""
        src = [self.encode(f"question: {q} context: {c}") for q, c, _ in triples]
        tgt = [self.encode(a) for _, _, a in triples]
        S, T = max(map(len, src)), max(map(len, tgt))
        input_ids = torch.tensor([s + [0] * (S - len(s)) for s in src])
        mask = torch.tensor([[1] * len(s) + [0] * (S - len(s)) for s in src])
        labels = torch.tensor([t + [-100] * (T - len(t)) for t in tgt])
        return input_ids, mask, labels


# ----------------------------------------------------------------------------------------------
# generation

class NoiseProcessor:
    """LogitsProcessor adding uniform noise in [-eps, eps] to every score (robustness check)."""

    def __init__(self, eps, gen):
        self.eps, self.gen = eps, gen

    def __call__(self, input_ids, scores):
        noise = (torch.rand(scores.shape, generator=self.gen, dtype=torch.float64) * 2 - 1) * self.eps
        return scores + noise.to(scores.dtype)


def greedy(model, input_ids, mask, processors=None):
    out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=GEN_MAX_NEW, num_beams=1,
                         do_sample=False, return_dict_in_generate=True, output_scores=True,
                         logits_processor=processors)
    return out


def beam(model, input_ids, mask, processors=None, num_return_sequences=1):
    return model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=GEN_MAX_NEW, num_beams=3,
                          length_penalty=1.0, early_stopping=False, do_sample=False,
                          num_return_sequences=num_return_sequences, return_dict_in_generate=True,
                          output_scores=True, logits_processor=processors)


def greedy_margins(out, eos=1):
    """Per row: smallest top-1 minus top-2 score over the steps up to and including its eos."""
    seq = out.sequences
    B = seq.shape[0]
    margins = [math.inf] * B
    done = [False] * B
    for t, sc in enumerate(out.scores):
        top = sc.float().topk(2, dim=-1).values
        for b in range(B):
            if done[b]:
                continue
            margins[b] = min(margins[b], (top[b, 0] - top[b, 1]).item())
            if seq[b, t + 1].item() == eos:
                done[b] = True
    return margins


def robustness(model, input_ids, mask, g_ids, b_ids, label):
    """float64 model and noisy scores must reproduce the greedy and beam ids. Returns a report dict."""
    rep = {}
    m64 = copy.deepcopy(model).double()
    g64 = greedy(m64, input_ids, mask).sequences
    b64 = beam(m64, input_ids, mask).sequences
    rep["fp64_same_ids"] = bool(torch.equal(g64, g_ids) and torch.equal(b64, b_ids))
    gen = torch.Generator().manual_seed(1234)
    flips = 0
    for _ in range(NOISE_TRIALS):
        proc = LogitsProcessorList([NoiseProcessor(NOISE, gen)])
        g = greedy(model, input_ids, mask, proc).sequences
        b = beam(model, input_ids, mask, proc).sequences
        flips += int(not (torch.equal(g, g_ids) and torch.equal(b, b_ids)))
    rep["noise_flips"] = flips
    top3 = beam(model, input_ids, mask, num_return_sequences=3).sequences_scores.view(-1, 3)
    rep["beam_top2_final_gap"] = [(r[0] - r[1]).item() for r in top3]
    if not rep["fp64_same_ids"] or flips:
        print(f"  !! {label}: generation is not robust: {rep}", file=sys.stderr)
    return rep


# ----------------------------------------------------------------------------------------------
# reference.json

def relative_buckets(cfg, R=256):
    rel = torch.arange(-R, R + 1)
    enc = T5Attention._relative_position_bucket(rel, bidirectional=True, num_buckets=cfg.relative_attention_num_buckets,
                                                max_distance=cfg.relative_attention_max_distance)
    dec = T5Attention._relative_position_bucket(rel, bidirectional=False, num_buckets=cfg.relative_attention_num_buckets,
                                                max_distance=cfg.relative_attention_max_distance)
    return {"relative_position": "memory_position - query_position, from -R to R", "R": R,
            "encoder_bidirectional": enc.tolist(), "decoder_unidirectional": dec.tolist()}


def run_case(model, inp, triples, with_pieces, label, diag):
    input_ids, mask, labels = inp.batch(triples)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, labels=labels)
    dec_in = model._shift_right(labels)
    g = greedy(model, input_ids, mask)
    b = beam(model, input_ids, mask)
    margins = greedy_margins(g)
    diag["robustness"][label] = robustness(model, input_ids, mask, g.sequences, b.sequences, label)
    diag["greedy_min_top2_margin"][label] = margins
    d = {}
    if with_pieces:
        (q, c, a), = triples
        text = f"question: {q} context: {c}"
        d.update(question=q, context=c, answer=a, input_text=text, input_pieces=inp.pieces(text),
                 label_pieces=inp.pieces(a))
    else:
        d["examples"] = [dict(question=q, context=c, answer=a, input_text=f"question: {q} context: {c}")
                         for q, c, a in triples]
    d.update(
        input_ids=input_ids.tolist(), attention_mask=mask.tolist(), labels=labels.tolist(),
        decoder_input_ids=dec_in.tolist(),
        encoder_last_hidden_state=tensor_summary(out.encoder_last_hidden_state),
        logits=tensor_summary(out.logits),
        loss=out.loss.item(),
        greedy_ids=g.sequences.tolist(),
        greedy_text=inp.tok.batch_decode(g.sequences, skip_special_tokens=True),
        greedy_min_top2_margin=margins,
        beam3_ids=b.sequences.tolist(),
        beam3_scores=b.sequences_scores.tolist(),
    )
    return d, (input_ids, mask, labels, out.logits)


def make_reference(model, inp, preset, seed, diag):
    cfg = model.config
    import sentencepiece
    ref = {
        "format": "t5-harness-reference/1",
        "generated_by": {
            "script": "make_hf_fixtures.py",
            "preset": preset,
            "seed": seed,
            "transformers_version": transformers.__version__,
            "transformers_commit": TRANSFORMERS_COMMIT,
            "torch_version": torch.__version__,
            "numpy_version": np.__version__,
            "sentencepiece_version": sentencepiece.__version__,
            "tokenizer_check": "HF T5Tokenizer(spiece.model, extra_ids=0, legacy=True) ids == sentencepiece ids + eos",
            "dtype": "float32",
        },
        "vocab_size": cfg.vocab_size,
        "special_ids": {"pad": cfg.pad_token_id, "eos": cfg.eos_token_id, "unk": 2, "bos": None,
                        "decoder_start": cfg.decoder_start_token_id},
        "tensors_in_safetensors": None,  # filled by the caller
        "generation": {
            "max_new_tokens": GEN_MAX_NEW,
            "do_sample": False,
            "greedy": {"num_beams": 1},
            "beam": {"num_beams": 3, "length_penalty": 1.0, "early_stopping": False, "num_return_sequences": 1},
            "note": "*_ids are HF generate() output: they start with decoder_start_token_id (0); rows that finished "
                    "early are right-padded with pad_token_id (0). beam3_scores = sequences_scores (sum of token "
                    "log-probs / length**length_penalty).",
        },
        "notes": {
            "shapes": "input_ids [B,S]; labels/decoder_input_ids [B,T]; encoder_last_hidden_state [B,S,d_model]; "
                      "logits [B,T,vocab]. B=1 for examples[], B=2 for padded_batch.",
            "labels": "answer ids + eos; padded_batch pads labels with -100 (ignored by the loss) and input_ids with "
                      "pad 0 / attention_mask 0. decoder_input_ids = shift_right(labels) with -100 -> 0.",
            "loss": "mean cross-entropy over all label positions != -100 (whole batch).",
            "padded_positions": "logits at label positions == -100 and encoder states at attention_mask == 0 are "
                                "still HF's deterministic values (decoder gets pad id 0 there, no decoder mask).",
            "floats": "float32 values printed with <= 9 significant digits (exact float32 round-trip).",
        },
        "fp32_vs_fp64": None,
        "relative_position_buckets": relative_buckets(cfg),
    }
    examples, cases = [], []
    for i, tr in enumerate(EXAMPLES):
        d, case = run_case(model, inp, [tr], True, f"examples[{i}]", diag)
        examples.append(d)
        cases.append(case)
    padded, case = run_case(model, inp, PADDED_BATCH, False, "padded_batch", diag)
    cases.append(case)
    # float32 vs float64 on every forward above
    m64 = copy.deepcopy(model).double()
    max_diff, max_abs = 0.0, 0.0
    with torch.no_grad():
        for input_ids, mask, labels, logits in cases:
            l64 = m64(input_ids=input_ids, attention_mask=mask, labels=labels).logits
            max_diff = max(max_diff, (l64 - logits.double()).abs().max().item())
            max_abs = max(max_abs, l64.abs().max().item())
    ref["fp32_vs_fp64"] = {"max_abs_logit_diff": max_diff, "max_abs_logit": max_abs}
    ref["examples"] = examples
    ref["padded_batch"] = padded
    return ref


# ----------------------------------------------------------------------------------------------
# diagnostics: attention score statistics (q.k + position bias, unmasked entries only)

def attention_stats(model, inp):
    records = []
    orig = T5Attention.forward

    def wrapped(self, hidden_states, mask=None, key_value_states=None, position_bias=None, *a, **kw):
        res = orig(self, hidden_states, mask, key_value_states, position_bias, *a, **kw)
        kv = hidden_states if key_value_states is None else key_value_states
        B, L, _ = hidden_states.shape
        q = self.q(hidden_states).view(B, L, self.n_heads, self.key_value_proj_dim).transpose(1, 2)
        k = self.k(kv).view(B, kv.shape[1], self.n_heads, self.key_value_proj_dim).transpose(1, 2)
        pb = res[2]
        scores = torch.matmul(q, k.transpose(3, 2)) + pb[..., -L:, :]
        valid = pb[..., -L:, :].expand_as(scores) > -1e4
        records.append(scores[valid].std().item())
        return res

    T5Attention.forward = wrapped
    try:
        input_ids, mask, labels = inp.batch(EXAMPLES[:1])
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=mask, labels=labels).logits
    finally:
        T5Attention.forward = orig
    return records, logits.abs().max().item()


# ----------------------------------------------------------------------------------------------
# fixtures

def safetensors_names(path):
    sys.path.insert(0, os.path.dirname(HF_STUBS))
    import st_format
    header, metadata, _, _ = st_format.read_header(path)
    return sorted(header), metadata


def make_random_fixture(name, out_root, diag_all):
    spec = FIXTURE_SPECS[name]
    out = os.path.join(out_root, name)
    print(f"== {name} (seed {spec['seed']})")
    inp = Inputs(os.path.join(FLAN, "spiece.model"))
    model = build_model(spec, inp)
    w = model.lm_head.weight.detach()
    print(f"  output rows norm: eos {w[1].norm():.2f}, others mean {w[2:].norm(dim=1).mean():.2f}")
    stds, max_logit = attention_stats(model, inp)
    print(f"  attention score std per layer: {[round(s, 2) for s in stds]}; max |logit| (examples[0]) {max_logit:.2f}")
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(os.path.join(FLAN, "spiece.model"), os.path.join(out, "spiece.model"))
    # reload the saved folder and compute the reference with the loaded model (what a user gets)
    loaded, info = T5ForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")):
        raise RuntimeError(f"{name}: reload is not clean: {info}")
    loaded.eval()
    diag = {"robustness": {}, "greedy_min_top2_margin": {}, "attention_score_std": stds}
    ref = make_reference(loaded, inp, spec["preset"], spec["seed"], diag)
    names, metadata = safetensors_names(os.path.join(out, "model.safetensors"))
    ref["tensors_in_safetensors"] = names
    dump_json(ref, os.path.join(out, "reference.json"))
    min_margin = min(min(v) for v in diag["greedy_min_top2_margin"].values())
    print(f"  greedy margins: {diag['greedy_min_top2_margin']}")
    print(f"  robustness: {diag['robustness']}")
    print(f"  fp32_vs_fp64: {ref['fp32_vs_fp64']}; safetensors metadata {metadata}; {len(names)} tensors")
    ok = min_margin >= MIN_GREEDY_MARGIN and all(
        r["fp64_same_ids"] and r["noise_flips"] == 0 for r in diag["robustness"].values())
    if not ok:
        print(f"  !! {name}: NOT ROBUST (min greedy margin {min_margin:.3g}); change its seed", file=sys.stderr)
    diag_all[name] = diag
    return ok


def make_sharded_bf16(out_root, diag_all):
    out = os.path.join(out_root, BF16_NAME)
    print(f"== {BF16_NAME}")
    # load by the relative name "hf-flan-tiny" (as a hub id would be), so that the "_name_or_path" that
    # save_pretrained writes into config.json is not an absolute path of this machine
    cwd = os.getcwd()
    os.chdir(FIXTURES)
    try:
        src = T5ForConditionalGeneration.from_pretrained("hf-flan-tiny").eval()
    finally:
        os.chdir(cwd)
    ref_fp32 = json.load(open(os.path.join(FLAN, "reference.json")))
    model = src.to(torch.bfloat16)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True, max_shard_size=BF16_MAX_SHARD)
    shutil.copyfile(os.path.join(FLAN, "spiece.model"), os.path.join(out, "spiece.model"))
    index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    shard_files = sorted(set(index["weight_map"].values()))
    if len(shard_files) != 3:
        raise RuntimeError(f"expected 3 shards, got {shard_files}")
    shards = {}
    for f in shard_files:
        names, metadata = safetensors_names(os.path.join(out, f))
        if metadata != {"format": "pt"}:
            raise RuntimeError(f"{f}: metadata {metadata}")
        shards[f] = names
    loaded, info = T5ForConditionalGeneration.from_pretrained(out, torch_dtype=torch.float32, output_loading_info=True)
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")):
        raise RuntimeError(f"{BF16_NAME}: reload is not clean: {info}")
    loaded.eval()
    ex = ref_fp32["examples"][0]
    input_ids = torch.tensor(ex["input_ids"])
    dec = torch.tensor(ex["decoder_input_ids"])
    with torch.no_grad():
        logits = loaded(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), decoder_input_ids=dec).logits
    # cross-check: fp32 weights rounded to bf16 by hand give the same logits
    manual = T5ForConditionalGeneration.from_pretrained(FLAN).eval()
    with torch.no_grad():
        for p in manual.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
        l2 = manual(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), decoder_input_ids=dec).logits
    if not torch.equal(l2, logits):
        raise RuntimeError("bf16 round trip differs from manual rounding")
    fp32_logits = torch.tensor(ref_fp32["examples"][0]["logits"]["values"])
    diff = (logits - fp32_logits).abs().max().item()
    expected = {
        "format": "hf-sharded-bf16-expected/1",
        "generated_by": {"script": "make_hf_fixtures.py", "transformers_version": transformers.__version__,
                         "transformers_commit": TRANSFORMERS_COMMIT, "torch_version": torch.__version__},
        "source": "tests/fixtures/hf-flan-tiny (float32), converted with model.to(torch.bfloat16) and "
                  f"save_pretrained(dir, safe_serialization=True, max_shard_size='{BF16_MAX_SHARD}')",
        "load": "T5ForConditionalGeneration.from_pretrained(dir, torch_dtype=torch.float32): bf16 weights widened "
                "exactly to float32, computed in float32 on CPU",
        "input": "hf-flan-tiny reference.json examples[0]",
        "input_ids": input_ids.tolist(),
        "attention_mask": torch.ones_like(input_ids).tolist(),
        "decoder_input_ids": dec.tolist(),
        "logits": tensor_summary(logits),
        "max_abs_diff_vs_float32_fixture_logits": diff,
        "index_total_size": index["metadata"]["total_size"],
        "shards": shards,
    }
    dump_json(expected, os.path.join(out, "expected.json"))
    print(f"  shards: {[(f, len(v)) for f, v in shards.items()]}; total_size {index['metadata']['total_size']}")
    print(f"  max |bf16 - fp32 fixture| logit diff: {diff:.4g}")
    diag_all[BF16_NAME] = {"shards": {f: len(v) for f, v in shards.items()}, "max_abs_diff_vs_fp32": diff}
    return True


def check_flan():
    """Recompute hf-flan-tiny's reference.json with this script's code and compare."""
    print("== check: recompute hf-flan-tiny/reference.json")
    ref = json.load(open(os.path.join(FLAN, "reference.json")))
    model = T5ForConditionalGeneration.from_pretrained(FLAN).eval()
    inp = Inputs(os.path.join(FLAN, "spiece.model"))
    diag = {"robustness": {}, "greedy_min_top2_margin": {}}
    mine = make_reference(model, inp, ref["generated_by"]["preset"], ref["generated_by"]["seed"], diag)
    mine["tensors_in_safetensors"] = safetensors_names(os.path.join(FLAN, "model.safetensors"))[0]
    problems = []
    worst = [0.0, ""]  # largest float difference relative to max(1, |reference value|)

    def cmp(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                problems.append(f"{path}: keys {list(a)} != {list(b)}")
            for k in a:
                if k in b:
                    cmp(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                problems.append(f"{path}: len {len(a)} != {len(b)}")
            else:
                for i, (x, y) in enumerate(zip(a, b)):
                    cmp(x, y, f"{path}[{i}]")
        elif isinstance(a, float) or isinstance(b, float):
            if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
                problems.append(f"{path}: {a!r} != {b!r}")
                return
            scale = max(1.0, abs(b)) if not path.endswith("abs_sum") else abs(b)
            rel = abs(a - b) / scale
            if rel > worst[0]:
                worst[:] = [rel, f"{path}: {a!r} vs {b!r}"]
        elif a != b:
            problems.append(f"{path}: {a!r} != {b!r}")

    skip = {"generated_by", "fp32_vs_fp64"}
    cmp({k: v for k, v in mine.items() if k not in skip}, {k: v for k, v in ref.items() if k not in skip}, "ref")
    print(f"  {len(problems)} structural/integer/string differences")
    for p in problems[:40]:
        print("   ", p)
    print(f"  largest float difference (relative to max(1,|ref|)): {worst[0]:.3g} at {worst[1]}")
    print(f"  fp32_vs_fp64: mine {mine['fp32_vs_fp64']} vs committed {ref['fp32_vs_fp64']}")
    ok = not problems and worst[0] < 1e-4
    print(f"  greedy margins of the committed flan fixture: {diag['greedy_min_top2_margin']}")
    print(f"  robustness of the committed flan fixture: {diag['robustness']}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=list(FIXTURE_SPECS) + [BF16_NAME])
    ap.add_argument("--out", default=FIXTURES, help="where the fixture folders go (default tests/fixtures)")
    ap.add_argument("--check-flan", action="store_true", help="only recompute and compare hf-flan-tiny/reference.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import_hf(args.threads)
    if args.check_flan:
        sys.exit(0 if check_flan() else 1)
    names = args.only or (list(FIXTURE_SPECS) + [BF16_NAME])
    ok, diag = True, {}
    for name in names:
        if name == BF16_NAME:
            ok &= make_sharded_bf16(args.out, diag)
        else:
            ok &= make_random_fixture(name, args.out, diag)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
