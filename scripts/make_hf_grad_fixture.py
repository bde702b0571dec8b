#!/usr/bin/python3
"""Write tests/fixtures/hf-flan-tiny/gradients.json: Hugging Face's loss and parameter gradients of
the fixture model on reference.json's padded batch, so that a test can check qa-train's backward
pass (not only its forward) against the reference implementation.

The output is committed; neither the tests nor CI run this script. Needs what
scripts/make_hf_fixtures.py needs (PyTorch, the transformers v4.35.2 source at $HF_SRC, the stubs of
/work/shared/peer). Run from the repository root:
  HF_SRC=/tmp/hf/transformers/src /usr/bin/python3 scripts/make_hf_grad_fixture.py

Per parameter (Hugging Face state-dict names) it records the gradient's L2 norm, its sum, its first 8
values and 16 values at a fixed stride, in float32 on CPU, training mode with dropout 0.
"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("HF_HARNESS", "/work/shared/peer"))
import harness_common as hc  # noqa: E402

_, _, T5ForConditionalGeneration = hc.import_t5()
import torch  # noqa: E402

FIXTURE = "tests/fixtures/hf-flan-tiny"


def main():
    torch.set_num_threads(1)
    ref = json.load(open(os.path.join(FIXTURE, "reference.json")))["padded_batch"]
    model = T5ForConditionalGeneration.from_pretrained(FIXTURE, torch_dtype=torch.float32)
    model.train()  # dropout_rate is 0: training mode only matters for what HF switches on with it
    out = model(input_ids=torch.tensor(ref["input_ids"]), attention_mask=torch.tensor(ref["attention_mask"]),
                labels=torch.tensor(ref["labels"]))
    out.loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        g = p.grad.detach().reshape(-1).double()
        stride = max(1, g.numel() // 16)
        grads[name] = {
            "shape": list(p.shape),
            "norm": g.norm().item(),
            "sum": g.sum().item(),
            "first_values": g[:8].tolist(),
            "stride": stride,
            "strided_values": g[::stride][:16].tolist(),
        }
    doc = {
        "generated_by": "scripts/make_hf_grad_fixture.py (transformers 4.35.2, PyTorch %s, float32, CPU)" % torch.__version__,
        "batch": "reference.json padded_batch (input_ids, attention_mask, labels; decoder inputs shifted by HF)",
        "loss": out.loss.item(),
        "gradients": grads,
    }
    with open(os.path.join(FIXTURE, "gradients.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("loss %.6f, %d gradients" % (out.loss.item(), len(grads)))


if __name__ == "__main__":
    main()
