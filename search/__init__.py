"""Optuna search over plummer layouts (lands with the search issue)."""
