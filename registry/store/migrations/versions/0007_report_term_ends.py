"""each accepted report's term end

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('term_ends_at', registry.store.models.UTCDateTime(), nullable=True))
    # Reports accepted before this revision did not record their own end: each keeps its listing's,
    # so no listing ends earlier than it did (a later withdrawal shortens only to what is known).
    op.execute(
        "UPDATE reports SET term_ends_at = (SELECT listings.listed_until FROM listings WHERE listings.id = reports.listing_id) "
        "WHERE listing_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_column('term_ends_at')
