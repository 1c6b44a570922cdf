"""shared rate-limit buckets: every replica and process leases from one bucket per member and kind

Revision ID: 0010
Revises: 0009
Create Date: 2027-02-01

Before this revision each process kept its buckets in memory; none are carried over (every
member starts from a full bucket, as after a restart before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_buckets',
        sa.Column('member', sa.String(length=63), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('level', sa.Double(), nullable=False),
        sa.Column('updated_at', sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint('member', 'kind'),
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
