#!/usr/bin/python3
"""Developer check: does a model folder (e.g. one written by qa-train) load in Hugging Face
transformers, and what does HF compute with it?

usage: HF_SRC=/tmp/hf/transformers/src /usr/bin/python3 scripts/hf_check_export.py DIR
           [--text "question: ... context: ..."]... [--max-new-tokens 16]

Loads DIR with the plain calls a user would make, without extra arguments:
    transformers.T5ForConditionalGeneration.from_pretrained(DIR)
    transformers.T5Tokenizer.from_pretrained(DIR)
prints every warning/log message that loading produced, and the model's loading info
(missing / unexpected / mismatched keys).  Exits with status 1 if any key is missing,
unexpected or mismatched (or loading fails), after printing the results below.
Then, for each --text (default: two built-in questions), prints one JSON line:
    {"text", "input_ids", "greedy_ids" (generate, num_beams 1, max_new_tokens 16),
     "greedy_text" (decoded, special tokens skipped), "first_step_logits_head" (the first 5
     logits of the first decoder step, i.e. the logits for decoder input [decoder_start_token_id])}

Needs (as scripts/make_hf_fixtures.py): PyTorch, numpy, sentencepiece, the transformers v4.35.2
source at $HF_SRC, and stand-ins for the PyPI-only packages at $HF_STUBS (default
/work/shared/peer/stubs).  Without the real `tokenizers` package, transformers 4.35.2's fallback
AddedToken class is unusable by slow tokenizers (unhashable, no __setstate__); this script gives it
the hash/__setstate__ of the real class in-process before loading (see patch_added_token).
Not used by the tests or CI.
"""
import argparse
import io
import json
import logging
import os
import sys
import warnings

HF_SRC = os.environ.get("HF_SRC", "/tmp/hf/transformers/src")
HF_STUBS = os.environ.get("HF_STUBS", "/work/shared/peer/stubs")
DEFAULT_TEXTS = [
    "question: What color is the sky? context: The sky is blue on a clear day.",
    "question: Who wrote the letter? context: Anna wrote the letter to her brother in Paris.",
]


def patch_added_token(tub):
    """See make_hf_fixtures.patch_added_token: make the no-`tokenizers` fallback AddedToken usable."""
    cls = tub.AddedToken
    if getattr(cls, "__module__", "").startswith("tokenizers"):
        return False
    patched = False
    if getattr(cls, "__hash__", None) is None:
        cls.__hash__ = lambda self: hash(self.content)
        patched = True
    if not hasattr(cls, "__setstate__"):
        cls.__setstate__ = lambda self, state: self.__dict__.update(state)
        patched = True
    return patched


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--text", action="append", help="input text (repeatable); default: two built-in examples")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(HF_SRC, "transformers", "__init__.py")):
        sys.exit(f"transformers source not found: HF_SRC={HF_SRC!r}")
    for p in (HF_SRC, HF_STUBS):
        if p not in sys.path:
            sys.path.insert(0, p)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers
        from transformers import tokenization_utils_base
    torch.set_num_threads(1)
    if patch_added_token(tokenization_utils_base):
        print("note: patched transformers' fallback AddedToken (no `tokenizers` package installed)", file=sys.stderr)

    # capture everything transformers logs (warnings about keys, legacy tokenizer, ...) and Python warnings
    transformers.utils.logging.set_verbosity_info()
    log_buf = io.StringIO()
    handler = logging.StreamHandler(log_buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    hf_logger = logging.getLogger("transformers")
    transformers.utils.logging.disable_default_handler()
    hf_logger.addHandler(handler)

    failed = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model, info = transformers.T5ForConditionalGeneration.from_pretrained(args.dir, output_loading_info=True)
        except Exception as e:  # noqa: BLE001
            print(f"MODEL LOAD FAILED: {type(e).__name__}: {e}")
            model, info, failed = None, {}, True
        try:
            tok = transformers.T5Tokenizer.from_pretrained(args.dir)
        except Exception as e:  # noqa: BLE001
            print(f"TOKENIZER LOAD FAILED: {type(e).__name__}: {e}")
            tok, failed = None, True
    hf_logger.removeHandler(handler)
    transformers.utils.logging.set_verbosity_error()

    print(f"== {args.dir}")
    print(f"files: {sorted(os.listdir(args.dir))}")
    msgs = [line for line in log_buf.getvalue().splitlines() if line.startswith(("WARNING", "ERROR"))]
    print(f"transformers warnings while loading ({len(msgs)}):")
    for m in msgs:
        print("  " + m)
    py_warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    print(f"python warnings while loading ({len(py_warnings)}):")
    for w in py_warnings:
        print("  " + w)
    if info:
        print("loading info: " + json.dumps({k: [str(x) for x in v] for k, v in info.items()}))
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if bad:
            print(f"KEY PROBLEMS: {bad}")
            failed = True
    if model is not None:
        c = model.config
        print(f"model: {type(model).__name__} feed_forward_proj={c.feed_forward_proj} tie_word_embeddings="
              f"{c.tie_word_embeddings} d_model={c.d_model} vocab={c.vocab_size} dtype={model.dtype} "
              f"decoder_start={c.decoder_start_token_id} eos={c.eos_token_id} pad={c.pad_token_id}")
    if tok is not None:
        print(f"tokenizer: {type(tok).__name__} len={len(tok)} sp_pieces={tok.sp_model.get_piece_size()} "
              f"eos={tok.eos_token!r}/{tok.eos_token_id} pad={tok.pad_token!r}/{tok.pad_token_id} "
              f"unk={tok.unk_token!r}/{tok.unk_token_id} extra_ids={tok._extra_ids} legacy={tok.legacy} "
              f"model_max_length={tok.model_max_length}")
    if model is not None and tok is not None:
        model.eval()
        for text in args.text or DEFAULT_TEXTS:
            enc = tok(text, return_tensors="pt")
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=args.max_new_tokens, num_beams=1, do_sample=False)
                start = torch.tensor([[model.config.decoder_start_token_id]])
                logits = model(**enc, decoder_input_ids=start).logits
            print(json.dumps({
                "text": text,
                "input_ids": enc.input_ids[0].tolist(),
                "greedy_ids": gen[0].tolist(),
                "greedy_text": tok.decode(gen[0], skip_special_tokens=True),
                "first_step_logits_head": [round(v, 6) for v in logits[0, 0, :5].tolist()],
            }))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
