"""`rlr export`: the stage (stage.py), the model card (card.py), the reload check (check.py)."""
