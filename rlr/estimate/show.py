"""The estimate as tables on stderr (`rlr estimate`, and the estimate section of `rlr validate`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from rlr.console import stderr


def _gib(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def print_estimate(summary: dict[str, Any]) -> None:
    m, d = summary["model"], summary["device"]
    stderr.print(f"model: {m['name_or_path']} ({m['params'] / 1e6:,.1f}M parameters; sizes from {m['source']})",
                 highlight=False, markup=False)
    budget = summary["memory_gib"]
    where = "unknown (give --memory)" if budget is None else f"{budget} GiB ({summary['memory_source']})"
    stderr.print(f"target: {d['target']} {d['dtype']} ({d['why']}); memory {where}", highlight=False, markup=False)
    for stage, r in summary["stages"].items():
        table = Table(title=f"{stage}: peak memory (GiB)", title_justify="left")
        for col in ("phase", "part", "GiB", "note"):
            table.add_column(col)
        for phase in ("resident", "training", "generation"):
            for p in r[phase]:
                table.add_row(phase, p["part"], _gib(p["gib"]), p["note"])
        acts = r["activations_gib"]
        table.add_row("(info)", "activations w/o | with ckpt", f"{_gib(acts['without_checkpointing'])} | "
                      f"{_gib(acts['with_checkpointing'])}", f"this run: {acts['used']} gradient checkpointing")
        table.add_row("(info)", "gradients", _gib(r["gradients_gib"]),
                      "freed while activations live (counted when gradient accumulation keeps them)")
        stderr.print(table)
        line = (f"{stage}: training peak {_gib(r['training_peak_gib'])} GiB"
                + (f", generation peak {_gib(r['generation_peak_gib'])} GiB" if r["generation_peak_gib"] else "")
                + f"; needs {_gib(r['needed_gib'])} GiB; {r['tokens_per_step']:,} tokens/step, "
                f"~{r['step_s']:.3g} s/step" + (f" (~{r['total_h']:.2f} h for max_steps)" if "total_h" in r else ""))
        stderr.print(line, highlight=False, markup=False)
        if "fits" in r:
            if r["fits"]:
                stderr.print(f"[green]{stage}: fits in {budget} GiB[/green]")
            else:
                stderr.print(f"[red]{stage}: does not fit in {budget} GiB[/red]")
                for k in r.get("make_it_fit", []):
                    stderr.print(f"  would fit with {k['set']} (needs {k['peak_gib']} GiB)", highlight=False,
                                 markup=False)
                if not r.get("make_it_fit"):
                    stderr.print("  no single setting rlr knows makes it fit: a smaller model or more GPUs (zero3)")
    s = summary["speed"]
    stderr.print(f"speed: {s['tflops']:.3g} TFLOP/s, {s['bandwidth_gbs']:.3g} GB/s ({s['source']})", highlight=False,
                 markup=False)
    for note in summary["notes"]:
        stderr.print(f"note: {note}", highlight=False, markup=False)
