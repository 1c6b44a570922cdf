"""registered client certificates: the registry admits only certificates it was given

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-15

Before this revision the registry signed member certificates itself and kept none of them, so
it cannot list them here. They keep working: certificate_policy records this moment, and a
certificate its CA signed before it is admitted unregistered (until it expires or is revoked).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'certificates',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('not_before', registry.store.models.UTCDateTime(), nullable=False),
        sa.Column('not_after', registry.store.models.UTCDateTime(), nullable=False),
        sa.Column('registered_at', registry.store.models.UTCDateTime(), nullable=False),
        sa.Column('registered_by', sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint('sha256'),
    )
    op.create_index('ix_certificates_role_name', 'certificates', ['role', 'name'], unique=False)
    policy = op.create_table(
        'certificate_policy',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('unregistered_issued_before', registry.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    # A registry already in use (a member or an event) holds certificates its server signed without
    # recording them: those signed before now stay admitted until they expire (730 days). A new
    # database has none, and admits registered certificates only.
    bind = op.get_bind()
    in_use = any(bind.execute(sa.text(f'SELECT 1 FROM {table} LIMIT 1')).first() is not None for table in ('members', 'events'))
    op.bulk_insert(policy, [{'id': 1, 'unregistered_issued_before': datetime.now(UTC) if in_use else None}])


def downgrade() -> None:
    op.drop_table('certificate_policy')
    op.drop_index('ix_certificates_role_name', table_name='certificates')
    op.drop_table('certificates')
