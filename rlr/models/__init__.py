"""Models: references and lineage between stages (references.py), loading with LoRA/dtype/device (loading.py),
and the offline tiny models the tests and the quickstart build (tiny.py)."""
