"""The application's settings, read once per process as prefect's are: the database is the
one $APP_DATABASE_URL named when this module was first imported."""

import os

DATABASE_URL = os.environ["APP_DATABASE_URL"]
