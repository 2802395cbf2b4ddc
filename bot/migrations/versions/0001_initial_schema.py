"""The tables as they were when migrations began: the knowledge base and its
sign-offs, handoffs and safety questions, and the SMS channel's state.

A database that ``create_all`` made before then is stamped with this revision
(``bot.db.migrate``).

Revision ID: 0001
Revises:
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_attempts", sa.Integer(), nullable=False),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.Column("next_notify_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_handoffs_sender_id"), "handoffs", ["sender_id"], unique=False
    )
    op.create_index(op.f("ix_handoffs_status"), "handoffs", ["status"], unique=False)
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("facet", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("sms", sa.Text(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=100), nullable=False),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("source_file", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_kb_entries_topic"), "kb_entries", ["topic"], unique=False)
    op.create_table(
        "kb_signoffs",
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("clinician", sa.String(length=100), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_table(
        "safety_questions",
        sa.Column("handoff_id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    op.create_index(
        op.f("ix_safety_questions_asked_at"),
        "safety_questions",
        ["asked_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_safety_questions_sender_id"),
        "safety_questions",
        ["sender_id"],
        unique=False,
    )
    op.create_table(
        "sms_contacts",
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("number_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender_id"),
    )
    op.create_table(
        "sms_menus",
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("buttons", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender_id"),
    )
    op.create_table(
        "sms_messages",
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("message_sid"),
    )
    op.create_index(
        op.f("ix_sms_messages_sender_id"), "sms_messages", ["sender_id"], unique=False
    )
    op.create_table(
        "sms_opt_outs",
        sa.Column("sender_id", sa.String(length=64), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender_id"),
    )


def downgrade() -> None:
    op.drop_table("sms_opt_outs")
    op.drop_index(op.f("ix_sms_messages_sender_id"), table_name="sms_messages")
    op.drop_table("sms_messages")
    op.drop_table("sms_menus")
    op.drop_table("sms_contacts")
    op.drop_index(op.f("ix_safety_questions_sender_id"), table_name="safety_questions")
    op.drop_index(op.f("ix_safety_questions_asked_at"), table_name="safety_questions")
    op.drop_table("safety_questions")
    op.drop_table("kb_signoffs")
    op.drop_index(op.f("ix_kb_entries_topic"), table_name="kb_entries")
    op.drop_table("kb_entries")
    op.drop_index(op.f("ix_handoffs_status"), table_name="handoffs")
    op.drop_index(op.f("ix_handoffs_sender_id"), table_name="handoffs")
    op.drop_table("handoffs")
