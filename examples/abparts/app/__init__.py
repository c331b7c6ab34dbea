"""ABParts backend (abmigrate's reference project).

Importing this package has no side effects: no engine is created and no
database is touched until ``app.database`` or ``app.main`` is used.
"""
