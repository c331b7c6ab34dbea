"""The compatibility corpus: real public Alembic histories run through abmigrate and Alembic.

Run it with ``./scripts/corpus`` (or ``python -m corpus``); see docs/compatibility.md.
"""
