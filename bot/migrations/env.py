"""Alembic's environment: the project's models, on the connection that
``bot.db.migrate`` hands over (it holds the migration lock)."""

from __future__ import annotations

from alembic import context

from bot.db import Base, import_models

import_models()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
