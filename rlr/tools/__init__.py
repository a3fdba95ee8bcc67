"""Tools the policy may call during RL rollouts (TRL's `GRPOTrainer(tools=...)`), named in `rl.tools`.

Built-ins: `calculator` (rlr/tools/calculator.py) and `python` (rlr/tools/python.py, rlr's sandbox). A user tool is
`file.py:function` or `module:function`; its signature and docstring become the schema the model sees. A tool call
is untrusted input: every built-in returns its error as text instead of raising, so one bad call scores its rollout
and never stops training.
"""
