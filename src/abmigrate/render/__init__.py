"""Presentation: human renderings of result records (JSON comes from the records themselves)."""
