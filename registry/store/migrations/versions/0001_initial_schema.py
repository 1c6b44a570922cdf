"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import registry.store.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('occurred_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('listing_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)

    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('merged_into', sa.Integer(), nullable=True),
    sa.Column('merged_at', registry.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merged_into'], ['subjects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('listings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('listed_from', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('listed_until', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('created_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index('ix_listings_subject_status', ['subject_id', 'status'], unique=False)

    op.create_table('member_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('valid_from', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', registry.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('key_id')
    )
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_keys_member_id'), ['member_id'], unique=False)

    op.create_table('subject_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survivor_id', sa.Integer(), nullable=False),
    sa.Column('merged_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('merged_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merged_id'], ['subjects.id'], ),
    sa.ForeignKeyConstraint(['survivor_id'], ['subjects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merged_id')
    )
    op.create_table('subject_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.LargeBinary(length=64), nullable=False),
    sa.Column('id_type', sa.String(length=32), nullable=False),
    sa.Column('strong', sa.Boolean(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('attached_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token', 'subject_id')
    )
    with op.batch_alter_table('subject_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_subject_tokens_strong_token', ['token'], unique=True, sqlite_where=sa.text('strong'), postgresql_where=sa.text('strong'))
        batch_op.create_index(batch_op.f('ix_subject_tokens_subject_id'), ['subject_id'], unique=False)

    op.create_table('reports',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('created_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('received_at', registry.store.models.UTCDateTime(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('envelope', sa.LargeBinary(), nullable=False),
    sa.Column('envelope_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('payload_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('decided_at', registry.store.models.UTCDateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=63), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('listing_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['member_keys.key_id'], ),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], ),
    sa.PrimaryKeyConstraint('report_id')
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_listing_id'), ['listing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_payload_sha256'), ['payload_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_status'), ['status'], unique=False)
        batch_op.create_index('ix_reports_subject_status', ['subject_id', 'status'], unique=False)

    op.create_table('report_tokens',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('token', sa.LargeBinary(length=64), nullable=False),
    sa.Column('id_type', sa.String(length=32), nullable=False),
    sa.Column('strong', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.report_id'], ),
    sa.PrimaryKeyConstraint('report_id', 'token')
    )
    with op.batch_alter_table('report_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_tokens_token'), ['token'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('report_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_tokens_token'))

    op.drop_table('report_tokens')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_subject_status')
        batch_op.drop_index(batch_op.f('ix_reports_status'))
        batch_op.drop_index(batch_op.f('ix_reports_payload_sha256'))
        batch_op.drop_index(batch_op.f('ix_reports_member_id'))
        batch_op.drop_index(batch_op.f('ix_reports_listing_id'))

    op.drop_table('reports')
    with op.batch_alter_table('subject_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_tokens_subject_id'))
        batch_op.drop_index('ix_subject_tokens_strong_token', sqlite_where=sa.text('strong'), postgresql_where=sa.text('strong'))

    op.drop_table('subject_tokens')
    op.drop_table('subject_merges')
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_keys_member_id'))

    op.drop_table('member_keys')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_subject_status')

    op.drop_table('listings')
    op.drop_table('subjects')
    op.drop_table('members')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_kind'))

    op.drop_table('events')
