"""`rlr report`: the stage (stage.py) and the figures it draws from metrics.jsonl (plots.py)."""
