"""Lineage (P4) and the champion's history: what made a model, and what served when."""
