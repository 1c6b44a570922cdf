"""key windows and revoked certificates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revoked_certificates',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('revoked_by', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('valid_until', registry.store.models.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.drop_column('valid_until')

    op.drop_table('revoked_certificates')
