"""`sft.stop_at`: stop SFT when a held-out metric, computed by `rlr evaluate`'s own code, reaches a value.

Why: a pinned SFT step count lands the model anywhere from 25% to 68% sampled accuracy depending on the seed and
on the CPU's float rounding (issue 13), and where RL starts decides what RL can show. Stopping on the metric
itself makes the starting point a setting, not luck; users want the same for a cold start before RL on a real
model ("SFT until the format is right and 30% of answers are").

Every `every` optimiser steps the callback generates on the first `problems` rows of this run's eval split with
eval's sampling settings (as tool-calling episodes for a preset with rl.tools / rl.environment, as evaluate
runs them), scores them with the evaluate stage's scorer, logs the value into metrics.jsonl
(`stop_at/<metric>`) and stops the trainer once `metric >= value`. The torch RNG state is saved and restored
around each check, so a check changes nothing in the training run's random stream.

The check uses the same problems the evaluation before RL reports on, so the number at the stop is selected on
its own noise (it stops the first time the noisy estimate crosses the value): the "before RL" figure is biased
upwards, which makes the measured RL lift conservative, never flattering.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class StopAtMetric(TrainerCallback):
    """Evaluates every `spec.every` steps; sets `should_training_stop` once the metric reaches `spec.value`."""

    def __init__(self, spec: Any, loaded: Any, tokenizer_source: str):
        from dataclasses import replace

        from rlr.evaluate.benchmarks import Benchmark, load_rows
        from rlr.evaluate.scoring import generation_settings
        from rlr.models.loading import load_tokenizer

        cfg = loaded.cfg
        self.loaded = loaded
        self.spec = spec
        self.bench = Benchmark(name="eval", kind="eval")
        load_rows(self.bench, loaded, spec.problems)
        self.settings = replace(generation_settings(cfg), n=spec.samples, greedy=spec.metric == "greedy_accuracy")
        self.tokenizer = load_tokenizer(tokenizer_source, cfg.model, padding_side="left")  # generation pads left
        from rlr.rewards.accuracy import TaskScore

        self.scorer = TaskScore.from_reward_specs(cfg.rewards)  # evaluate's verifier, with the preset's settings
        self.answer_format = cfg.template.answer_format
        self.history: list[dict[str, Any]] = []
        self.reached_at: int | None = None
        self._pending: dict[str, float] | None = None

    def measure(self, model: Any) -> float:
        import torch

        from rlr.evaluate.generate import HFGenerator
        from rlr.evaluate.scoring import score_generation
        from rlr.evaluate.tool_rollout import with_tools

        rng = torch.get_rng_state()  # generation seeds torch; training's random stream must not notice
        was_training = model.training
        model.eval()
        try:
            generator = with_tools(HFGenerator(model, self.tokenizer, next(model.parameters()).device), self.loaded)
            inputs = self.bench.rows if getattr(generator, "takes_rows", False) else \
                [row["prompt"] for row in self.bench.rows]
            gen = generator.generate(inputs, self.settings, show_progress=False)
        finally:
            torch.set_rng_state(rng)
            model.train(was_training)
        problems, _, _ = score_generation(self.bench, gen, "greedy" if self.settings.greedy else "sample",
                                          self.scorer, self.answer_format)
        flags = [float(c) for p in problems for c in p.correct]
        return sum(flags) / len(flags) if flags else 0.0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step < self.spec.start or step % self.spec.every or model is None:
            return
        value = self.measure(model)
        self.history.append({"step": step, self.spec.metric: round(value, 4)})
        self._pending = {f"stop_at/{self.spec.metric}": value}
        control.should_log = True  # the value goes into this step's metrics.jsonl record
        from rlr.console import stderr

        reached = value >= self.spec.value
        stderr.print(f"stop_at: step {step} {self.spec.metric} {value:.1%} "
                     f"{'>=' if reached else '<'} {self.spec.value:.0%}" + (", stopping SFT" if reached else ""))
        if reached:
            self.reached_at = step
            control.should_training_stop = True
            control.should_save = True  # the stopping point is a checkpoint too, so --resume ends here as well

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending and logs is not None:
            logs.update(self._pending)  # runs before RunDirMetrics (added later), so the record carries it
            self._pending = None

    def summary(self) -> dict[str, Any]:
        return {"metric": self.spec.metric, "value": self.spec.value, "reached_at_step": self.reached_at,
                "checks": self.history}
