"""Fleets: one plan rolled out over many databases and tenant schemas (see docs/fleet.md)."""
