"""Alembic migrations of the project's own tables (knowledge base, sign-offs,
handoffs, safety questions, SMS state). Applied by ``bot.db.migrate``: by the
set-up (``make kb``), by ``python -m bot.db upgrade``, and by each process on
its first use of a database. Rasa's own tracker-store table is Rasa's."""
