"""Tagging: a compiled model run over image files, and the typed results (labels,
scores, boxes) it gives back. Knows nothing of collections or databases."""
