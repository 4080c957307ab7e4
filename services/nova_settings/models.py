"""The peewee models of the settings database (its schema is made by core/db.py's migrations).

The models are bound to a database by ``core.db.open_database()``.
"""

from __future__ import annotations

import peewee


class BaseModel(peewee.Model):
    class Meta:
        database = None  # bound by core.db.open_database()
        legacy_table_names = False


class User(BaseModel):
    id = peewee.AutoField()
    name = peewee.TextField(unique=True)
    token_hash = peewee.TextField(unique=True)
    created_at = peewee.TextField(null=True)

    class Meta:
        table_name = "user"


class UserSettings(BaseModel):
    user = peewee.ForeignKeyField(
        User, primary_key=True, column_name="user_id", on_delete="CASCADE", backref="settings"
    )
    # NULL means "the host's local model" (NOVA_LOCAL_MODEL at read time).
    llm_model = peewee.TextField(null=True)
    llm_temperature = peewee.FloatField()
    llm_max_tokens = peewee.IntegerField()
    updated_at = peewee.TextField(null=True)
    revision = peewee.IntegerField(default=0)

    class Meta:
        table_name = "user_settings"


MODELS: list[type[peewee.Model]] = [User, UserSettings]
