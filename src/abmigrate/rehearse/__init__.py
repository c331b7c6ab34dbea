"""``abmigrate rehearse``: a timed run of pending revisions on a copy of the database."""
