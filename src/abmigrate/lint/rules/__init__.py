"""One module per rule; each registers itself with :func:`abmigrate.lint.registry.register`."""
