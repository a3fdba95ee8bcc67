"""Rewards: TRL-contract reward functions, the shared answer extractor and the one definition of correct.

Importing this package is cheap (no math-verify, no torch): heavy work starts on first use.
"""

from rlr.rewards.correctness import correctness_stats, is_correct, reset_correctness_stats, score_correctness
from rlr.rewards.extract import extract_answer
from rlr.rewards.registry import REWARDS, build_reward, build_reward_functions, validate_reward_specs

__all__ = [
    "REWARDS",
    "build_reward",
    "build_reward_functions",
    "correctness_stats",
    "extract_answer",
    "is_correct",
    "reset_correctness_stats",
    "score_correctness",
    "validate_reward_specs",
]
