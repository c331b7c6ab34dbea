"""The command line (Click): ``abmigrate.cli.main:run`` is the entry point; command groups load lazily."""
