"""Configuration-file pieces, one per Binder file (see plan.PIECES for the order)."""
