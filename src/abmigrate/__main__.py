from abmigrate.cli import run

run()
