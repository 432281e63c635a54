"""The empathetic response copilot."""

# Decides, before any of them is imported, whether the checker's modules load from their C build or their source.
from copilot import native as native
