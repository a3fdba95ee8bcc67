"""Isolated execution of untrusted, model-generated code (see `rlr.sandbox.runner` for the guarantees and
`rlr.sandbox.judge` for verdicts the code under test cannot forge)."""

from rlr.sandbox.judge import JudgedJob, JudgedResult, run_judged, run_judged_many
from rlr.sandbox.runner import SandboxResult, remove_tree, run_code, run_many

__all__ = ["JudgedJob", "JudgedResult", "SandboxResult", "remove_tree", "run_code", "run_judged", "run_judged_many",
           "run_many"]
