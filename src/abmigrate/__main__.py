from abmigrate.cli.main import run

run()
