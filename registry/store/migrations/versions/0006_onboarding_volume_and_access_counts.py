"""onboarding volume and access counts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_counts',
    sa.Column('member', sa.String(length=63), nullable=False),
    sa.Column('hour', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('method', sa.String(length=80), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('member', 'hour', 'method')
    )
    with op.batch_alter_table('access_counts', schema=None) as batch_op:
        batch_op.create_index('ix_access_counts_hour', ['hour'], unique=False)

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('onboarding_per_day', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('onboarding_per_day')

    with op.batch_alter_table('access_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_access_counts_hour')

    op.drop_table('access_counts')
