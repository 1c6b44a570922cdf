"""listing quarantine by the flood guard

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quarantined_at', registry.store.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('quarantine', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('quarantine')
        batch_op.drop_column('quarantined_at')
