"""Applying revisions: the plan's gates, the runner, dry runs, verification, the journal and what surrounds an upgrade."""
