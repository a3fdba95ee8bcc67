"""Generated tokens/s: rlr's batched, length-sorted `HFGenerator` vs a per-prompt `model.generate` loop.

Same tiny model, same prompts (arithmetic chat prompts of mixed length), same sampling settings and the same eos
handling; the untrained model rarely stops early, so both sides generate about the same number of tokens.
The two paths alternate over a few rounds and the median ratio is reported, so a busy machine slows both sides
of each pair alike. Target: ratio >= 4x on a 2-core CPU.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = 64
SAMPLES = 2
MAX_NEW_TOKENS = 32
BATCH_SIZE = 32
ROUNDS = 3


def make_prompts(seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(PROMPTS):
        digits = rng.choice([1, 2, 3, 4])  # mixed lengths, so sorting by length matters
        a, b = rng.randint(0, 10**digits - 1), rng.randint(0, 10**digits - 1)
        prompts.append([{"role": "user", "content": f"{a}+{b}="}])
    return prompts


def per_prompt_loop(model, tokenizer, prompts, eos: set[int]) -> tuple[float, int]:
    """The naive baseline: one `generate` call per prompt (n samples via num_return_sequences)."""
    import torch

    from rlr.evaluate.generate import prompt_to_text, split_completion

    torch.manual_seed(0)
    tokens = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = tokenizer(prompt_to_text(prompt, tokenizer), add_special_tokens=False, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, num_return_sequences=SAMPLES, do_sample=True,
                                 temperature=1.0, top_p=1.0, top_k=0, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=sorted(eos))
            for row in out[:, ids["input_ids"].shape[1]:].tolist():
                tokens += split_completion(row, eos)[1]
    return time.perf_counter() - t0, tokens


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import torch
    from transformers import AutoModelForCausalLM

    from rlr.evaluate.generate import GenerationSettings, HFGenerator
    from rlr.models.loading import load_tokenizer
    from rlr.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model(Path(tmp) / "tiny", size="tiny", seed=0)
        tokenizer = load_tokenizer(str(path))
        model = AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = make_prompts()
    generator = HFGenerator(model, tokenizer)
    settings = GenerationSettings(n=SAMPLES, temperature=1.0, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS,
                                  batch_size=BATCH_SIZE, seed=0)
    generator.generate(prompts[:8], settings, show_progress=False)  # warm-up (allocator, kernels)
    rows = []
    for _ in range(ROUNDS):
        batched = generator.generate(prompts, settings, show_progress=False)
        loop_s, loop_tokens = per_prompt_loop(model, tokenizer, prompts, generator.eos)
        rows.append((batched.seconds, batched.generated_tokens, loop_s, loop_tokens))
    print(f"tiny model (~1M params), {PROMPTS} prompts x {SAMPLES} samples, {MAX_NEW_TOKENS} new tokens, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {ROUNDS} alternating rounds\n")
    print("| round | per-prompt loop s (tokens) | loop tokens/s | batched s (tokens) | batched tokens/s | ratio |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for i, (b_s, b_tok, l_s, l_tok) in enumerate(rows, 1):
        ratio = (b_tok / b_s) / (l_tok / l_s)
        ratios.append(ratio)
        print(f"| {i} | {l_s:.2f} ({l_tok}) | {l_tok / l_s:.0f} | {b_s:.2f} ({b_tok}) | {b_tok / b_s:.0f} | "
              f"{ratio:.1f}x |")
    print(f"\nmedian ratio (batch {BATCH_SIZE}, length-sorted, vs one generate call per prompt): "
          f"{statistics.median(ratios):.1f}x")

if __name__ == "__main__":
    main()
