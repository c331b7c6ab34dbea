"""The database itself: URLs, connections and the version table, the migration lock, scratch databases, PostgreSQL lock knowledge, schema fingerprints and synthetic rows."""
