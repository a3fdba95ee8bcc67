"""`rlr estimate`: peak accelerator memory and time per step of a preset's training stages, before launch."""
