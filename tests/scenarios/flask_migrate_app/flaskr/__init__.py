"""A small Flask application in the Flask-Migrate layout (`flask db init` wrote migrations/).

Its own database comes from $FLASKR_DATABASE_URL (else a SQLite file in the instance folder):
abmigrate must migrate the database it is told, never this one.
"""

import os

from flask import Flask
from flask_migrate import Migrate

from flaskr.models import db

migrate = Migrate()


def create_app() -> Flask:
    app = Flask(__name__)
    default = "sqlite:///" + os.path.join(app.instance_path, "flaskr.db")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("FLASKR_DATABASE_URL", default)
    db.init_app(app)
    migrate.init_app(app, db)
    return app
