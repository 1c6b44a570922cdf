"""report retractions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_retractions',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('envelope', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.report_id'], ),
    sa.PrimaryKeyConstraint('report_id')
    )


def downgrade() -> None:
    op.drop_table('report_retractions')
