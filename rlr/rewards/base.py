"""The base of rlr's built-in rewards, and the traits a reward declares about itself.

Code elsewhere asks a reward what it is instead of keeping lists of names: the RL logs call the first reward that
`measures_correctness` the run's `accuracy` (and the report plots it as such); a reward with
`length_budget_defaults` gets its length arguments from the run's `max_completion_length` unless the preset sets
them; `rl.alarms.reward_hacking` watches the mean of every reward that is `watched_for_hacking`. A user's reward
can declare the same traits as attributes of its function or class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class Reward:
    """Base for built-in rewards: TRL logs a reward by its `__name__`, so every instance carries one."""

    name = "reward"
    # its mean is the run's `accuracy`; evaluate and the reward doctor treat it as the verifier
    measures_correctness: ClassVar[bool] = False
    # rl.alarms.reward_hacking fires when its mean rises while accuracy stays flat
    watched_for_hacking: ClassVar[bool] = True

    def __init__(self) -> None:
        self.__name__ = self.name

    @classmethod
    def length_budget_defaults(cls, args: Mapping[str, Any], max_completion_length: int) -> dict[str, Any]:
        """Args to default from the run's completion budget (none unless the reward is length-shaped)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "__name__")
        return f"{type(self).__name__}({args})"


def measures_correctness(reward: Any) -> bool:
    """Does this reward (a Reward, a wrapped user function or a plain function) say it scores correctness?"""
    inner = getattr(reward, "func", None)  # NamedReward: a plain function under another name
    return bool(getattr(reward, "measures_correctness", False) or getattr(inner, "measures_correctness", False))


def watched_for_hacking(reward: Any) -> bool:
    """Should `rl.alarms.reward_hacking` watch this reward's mean? Yes unless the reward (or the function a wrapper
    holds) says otherwise; a correctness reward is the yardstick, never watched."""
    if measures_correctness(reward):
        return False
    inner = getattr(reward, "func", None)
    return bool(getattr(reward, "watched_for_hacking", True) and getattr(inner, "watched_for_hacking", True))
