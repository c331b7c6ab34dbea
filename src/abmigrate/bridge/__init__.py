"""The bridge to Alembic: the only package that touches Alembic's internals (the revision graph, env.py runs, offline SQL, autogenerate, the models env.py hands over)."""
