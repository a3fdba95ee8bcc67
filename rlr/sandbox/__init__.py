"""Isolated execution of untrusted, model-generated code (see `rlr.sandbox.runner` for the guarantees)."""

from rlr.sandbox.runner import SandboxResult, run_code, run_many

__all__ = ["SandboxResult", "run_code", "run_many"]
