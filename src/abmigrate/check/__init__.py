"""``abmigrate check``: the named checks of a project's history (graph, lint, round trips, data trips, models)."""
