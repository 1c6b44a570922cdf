"""events searched by listing, never by kind; subjects by the subject they were merged into

Revision ID: 0012
Revises: 0011
Create Date: 2027-04-01

SQLite plans without statistics, and with an index on `events.kind` it searched every
event of a kind (every report ever submitted, every listing ever made) where a statement
also named a listing or a range of seqs: the changes feed read and sorted every change
event after its cursor for each page, and a listing's log entry read every listing
event. Without that index the feed walks seqs in order and stops at its page; the
listing's events are found through their own index.

`subjects.merged_into` had no index: every report that merged two subjects, every
opinion a member gave, and every subject shown read all subjects to find those
merged into one.
"""

from __future__ import annotations

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_kind')
        batch_op.create_index('ix_events_listing_id', ['listing_id'], unique=False)
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.create_index('ix_subjects_merged_into', ['merged_into'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index('ix_subjects_merged_into')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_listing_id')
        batch_op.create_index('ix_events_kind', ['kind'], unique=False)
