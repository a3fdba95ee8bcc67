"""Peak accelerator memory of one training stage, as a sum of named parts (pure arithmetic: no torch).

What is modelled is what TRL 1.16 + PEFT + transformers 5 allocate for a Llama/Qwen-style decoder:
- weights in the load dtype; the reference model is a second copy only for full-parameter runs with beta > 0
  (with LoRA, TRL's reference is the same base with the adapter switched off);
- trainable parameters: LoRA adapters are kept in fp32 by PEFT whatever the base dtype; their gradients and the
  optimiser's state (AdamW: two moments) follow the parameter dtype;
- activations: what autograd keeps per token per layer (norm inputs in fp32, q/k/v/attention output, the four
  MLP tensors; LoRA adds fp32 casts of each adapted input and, with dropout, a copy + mask); with gradient
  checkpointing one layer input per layer plus one layer recomputed; plus the backward's workspace (the gradients
  of one layer's intermediates, alive while every saved activation still is). Checked against autograd's own
  saved tensors (torch.autograd.graph.saved_tensors_hooks) on the tiny model: 476 MiB counted vs 483 estimated;
- the logits: TRL 1.16 patches the LM head with a tiled kernel (trl.kernels.chunked_logprob), so the full
  tokens x vocabulary logits never exist; its peak is one 4096-token x 32768-vocabulary tile plus the fp32
  gradient of the hidden states (and of the head when it trains). Printed because before TRL 1.16 this was the
  hidden peak of long-vocabulary models;
- generation (transformers generate): the KV cache of the whole generation batch at prompt + completion length;
- vLLM colocated: the share of the device it reserves (vllm_gpu_memory_utilization).
The stage's peak is the larger of the generation phase and the training phase; both sit on the resident part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# trl.kernels.chunked_logprob tile (TRL 1.16): TOKEN_CHUNK_SIZE x _CHUNKED_LOGPROB_CHUNK_SIZE
HEAD_TOKEN_TILE, HEAD_VOCAB_TILE = 4096, 32768
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
NF4_BYTES = 0.5 + 0.5 / 64 * 4 / 4  # 4-bit weights plus one fp32-ish absmax per 64 (double-quantised, ~0.53)


@dataclass(frozen=True)
class StagePlan:
    """What one stage does, in numbers (built from the preset and the TRL config by rlr.estimate.plan)."""

    stage: str  # sft | rl
    dtype: str  # weights / compute dtype: float32, bfloat16, float16
    load_in_4bit: bool
    lora_targets: tuple[str, ...] | None  # None: full-parameter
    lora_r: int
    lora_dropout: float
    rows: int  # sequences per micro-batch (per_device_train_batch_size)
    seq: int  # tokens per sequence in the training forward
    grad_accum: int
    checkpointing: bool
    optim: str
    attention: str  # sdpa | eager | flash_attention_2 ...
    # RL only
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_rows: int = 0  # sequences generated at once (per device)
    beta: float = 0.0
    vllm: str | None = None  # None | colocate | server
    vllm_share: float = 0.0


@dataclass
class Part:
    name: str
    bytes: float
    note: str = ""


@dataclass
class MemoryEstimate:
    resident: list[Part] = field(default_factory=list)  # alive for the whole stage
    training: list[Part] = field(default_factory=list)  # on top of resident, during forward/backward/step
    generation: list[Part] = field(default_factory=list)  # on top of resident, while sampling completions
    gradients: Part | None = None  # counted in `training` only when they coexist with the activations
    trainable_params: int = 0
    activations_without_checkpointing: float = 0.0
    activations_with_checkpointing: float = 0.0

    def total(self, parts: list[Part]) -> float:
        return sum(p.bytes for p in parts)

    @property
    def training_peak(self) -> float:
        return self.total(self.resident) + self.total(self.training)

    @property
    def generation_peak(self) -> float:
        return self.total(self.resident) + self.total(self.generation)

    @property
    def peak(self) -> float:
        return max(self.training_peak, self.generation_peak)


def lora_params(shape, targets: tuple[str, ...], r: int) -> int:
    linears = shape.linears()
    chosen = linears if "all-linear" in targets else {k: v for k, v in linears.items() if k in targets}
    return shape.layers * sum(r * (a + b) for a, b in chosen.values())


def optimizer_state_bytes(optim: str, params: int, param_bytes: float) -> float:
    """AdamW keeps two moments in the parameter dtype; 8-bit variants one byte each; SGD / Adafactor ~nothing."""
    name = optim.lower()
    if "8bit" in name:
        return 2.0 * params
    if name.startswith("sgd") or "adafactor" in name:
        return 0.0
    if "lion" in name:
        return params * param_bytes
    return 2.0 * params * param_bytes


def layer_activation_bytes(shape, plan: StagePlan, seq: int) -> float:
    """Bytes autograd saves per token in one decoder layer (see the module docstring)."""
    b = DTYPE_BYTES[plan.dtype]
    h, i = shape.hidden, shape.intermediate
    q = shape.heads * shape.head_dim
    kv = shape.kv_heads * shape.head_dim
    norms = 2 * (4 * h + 2 * b * h)  # fp32 input + normalised + output, twice
    attention = b * (q + 2 * max(kv, q) + q + q)  # q, k and v (expanded to all heads), output, o_proj input
    if plan.attention == "eager":
        attention += shape.heads * seq * (4 + b)  # fp32 softmax probabilities and their cast
    mlp = 4 * b * i  # gate output, its activation, up output, their product
    total = norms + attention + mlp
    if plan.lora_targets is not None:
        linears = shape.linears()
        chosen = linears if "all-linear" in plan.lora_targets else {
            k: v for k, v in linears.items() if k in plan.lora_targets}
        inputs = sum(a for a, _ in chosen.values())
        if b != 4:
            total += 4 * inputs  # PEFT casts each adapted input to the fp32 adapter dtype
        if plan.lora_dropout > 0:
            total += (b + 1) * inputs  # a dropped-out copy and its mask per adapted module
    return total


def estimate_memory(shape, plan: StagePlan, device_bytes: float | None = None) -> MemoryEstimate:
    b = DTYPE_BYTES[plan.dtype]
    params = shape.params()
    est = MemoryEstimate()
    weight_bytes = NF4_BYTES if plan.load_in_4bit else b
    est.resident.append(Part("weights", params * weight_bytes, f"{params / 1e6:,.1f}M x "
                             f"{'4-bit' if plan.load_in_4bit else plan.dtype}"))
    if plan.stage == "rl" and plan.beta > 0 and plan.lora_targets is None:
        est.resident.append(Part("reference model", params * b, "beta > 0, full-parameter: a frozen copy"))
    if plan.lora_targets is not None:
        trainable, tb = lora_params(shape, plan.lora_targets, plan.lora_r), 4
        est.resident.append(Part("LoRA adapter", trainable * tb, f"{trainable / 1e6:,.2f}M fp32"))
    else:
        trainable, tb = params, b
    est.trainable_params = trainable
    est.resident.append(Part("optimizer state", optimizer_state_bytes(plan.optim, trainable, tb), plan.optim))
    grads = est.gradients = Part("gradients", trainable * tb, "trainable parameters' dtype")

    tokens = plan.rows * plan.seq
    per_layer = layer_activation_bytes(shape, plan, plan.seq)
    edges = tokens * (4 * shape.hidden + 3 * b * shape.hidden)  # embeddings out, final norm, hidden kept by the head
    full = tokens * per_layer * shape.layers + edges
    ckpt = tokens * b * shape.hidden * shape.layers + tokens * per_layer + edges
    est.activations_without_checkpointing, est.activations_with_checkpointing = full, ckpt
    acts = Part("activations", ckpt if plan.checkpointing else full,
                f"{plan.rows} x {plan.seq} tokens, gradient checkpointing {'on' if plan.checkpointing else 'off'}")
    # backward of the top layer: the gradients of its MLP intermediates and hidden states, while every saved
    # activation is still alive
    workspace = Part("backward workspace", tokens * (3 * shape.intermediate + 2 * shape.hidden) * b,
                     "gradients of one layer's intermediates")
    scored = plan.rows * max(plan.seq - 1, 1)
    head = min(scored, HEAD_TOKEN_TILE) * min(shape.vocab, HEAD_VOCAB_TILE) * b * 2 + scored * shape.hidden * 4
    head_trains = plan.lora_targets is None
    if head_trains:
        head += shape.vocab * shape.hidden * 4
    logits = Part("logits peak", head, f"tiled LM head: {min(scored, HEAD_TOKEN_TILE)} tokens x "
                  f"{min(shape.vocab, HEAD_VOCAB_TILE)} vocab tile (the full {scored} x {shape.vocab} logits would be "
                  f"{scored * shape.vocab * 4 / 2**30:.2f} GiB in fp32)")
    # start of backward: all activations + the head; end of backward / optimiser step: all gradients.
    # With gradient accumulation the previous micro-batches' gradients are alive during the next forward.
    if plan.grad_accum > 1 or grads.bytes < acts.bytes + logits.bytes:
        est.training += [acts, workspace, logits] + ([grads] if plan.grad_accum > 1 else [])
    else:
        est.training += [grads]
    if plan.stage == "rl":
        if plan.vllm == "colocate":
            share = plan.vllm_share * (device_bytes or 0.0)
            est.resident.append(Part("vLLM reserved share", share, f"vllm_gpu_memory_utilization {plan.vllm_share}"
                                     + ("" if device_bytes else " of the device (give --memory to size it)")))
        elif plan.vllm == "server":
            est.resident.append(Part("vLLM", 0.0, "server mode: on its own GPU(s), not this one"))
        else:
            length = plan.prompt_tokens + plan.completion_tokens
            kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * length * plan.generation_rows * b
            est.generation.append(Part("KV cache", kv, f"{plan.generation_rows} sequences x {length} tokens "
                                       "(transformers generate)"))
            prefill = plan.generation_rows * plan.prompt_tokens * (3 * shape.intermediate + 4 * shape.hidden) * b
            est.generation.append(Part("generation workspace", prefill, "prefill of one layer (no grad)"))
    return est
