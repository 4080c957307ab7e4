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
    role = peewee.TextField(default="user")  # "admin" | "user"
    disabled = peewee.BooleanField(default=False)
    gateway_key_hash = peewee.TextField(null=True, unique=True)
    daily_token_budget = peewee.IntegerField(null=True)

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


class Usage(BaseModel):
    """Requests through the gateway per user, UTC day and model (user_id 0: the master key)."""

    user_id = peewee.IntegerField()
    day = peewee.TextField()
    model = peewee.TextField()
    requests = peewee.IntegerField(default=0)
    errors = peewee.IntegerField(default=0)
    prompt_tokens = peewee.IntegerField(default=0)
    completion_tokens = peewee.IntegerField(default=0)
    cost = peewee.FloatField(default=0.0)

    class Meta:
        table_name = "usage"
        primary_key = peewee.CompositeKey("user_id", "day", "model")


class WebSession(BaseModel):
    """A signed-in browser (web/session.py): only the sha256 of the cookie is stored."""

    id_hash = peewee.TextField(primary_key=True)
    user = peewee.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    csrf_token = peewee.TextField()
    try_key_hash = peewee.TextField(null=True, unique=True)
    created_at = peewee.TextField()
    expires_at = peewee.TextField()

    class Meta:
        table_name = "web_session"


MODELS: list[type[peewee.Model]] = [User, UserSettings, Usage, WebSession]
