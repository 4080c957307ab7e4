"""nova-settings: the host's settings service (FastAPI, peewee, SQLite)."""

__version__ = "0.1.0"
