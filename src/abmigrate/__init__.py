"""abmigrate."""
