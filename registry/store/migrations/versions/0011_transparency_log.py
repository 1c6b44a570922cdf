"""the transparency log: a salt per event, leaves, tree nodes, signed checkpoints, witnesses

Revision ID: 0011
Revises: 0010
Create Date: 2027-03-01

Every event written before this revision gets a random salt and a leaf, in seq order; the
server's sequencer puts them in the tree and signs the first checkpoint when it starts.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

import registry.store.models
from jpr_client.transparency.entry import SALT_SIZE, LogEvent, commitment


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('salt', sa.LargeBinary(length=32), nullable=True))
        batch_op.create_index('ix_events_report_id', ['report_id'], unique=False)
    op.create_table(
        'log_state',
        sa.Column('name', sa.String(length=16), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'log_leaves',
        sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('commitment', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('leaf_index'),
        sa.UniqueConstraint('seq'),
    )
    op.create_table(
        'log_pending',
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('commitment', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
    )
    op.create_table(
        'log_nodes',
        sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('level', 'idx'),
    )
    op.create_table(
        'log_checkpoints',
        sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('signed_at', registry.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('size'),
    )
    op.create_table(
        'log_cosignatures',
        sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('witness', sa.String(length=255), nullable=False),
        sa.Column('line', sa.Text(), nullable=False),
        sa.Column('cosigned_at', registry.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('size', 'witness'),
    )
    op.create_table(
        'witnesses',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('verifier_key', sa.Text(), nullable=False),
        sa.Column('added_at', registry.store.models.UTCDateTime(), nullable=False),
        sa.Column('removed_at', registry.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    assigned = _backfill(op.get_bind())
    op.bulk_insert(sa.table('log_state', sa.column('name'), sa.column('size'), sa.column('root_hash')), [
        {'name': 'assigned', 'size': assigned, 'root_hash': None},
        {'name': 'integrated', 'size': 0, 'root_hash': None},
    ])
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.alter_column('salt', existing_type=sa.LargeBinary(length=32), nullable=False)


_EVENTS = sa.table(
    'events', sa.column('seq', sa.Integer()), sa.column('occurred_at', registry.store.models.UTCDateTime()),
    sa.column('actor', sa.String()), sa.column('kind', sa.String()), sa.column('report_id', sa.String()),
    sa.column('subject_id', sa.Integer()), sa.column('listing_id', sa.Integer()), sa.column('detail', sa.JSON()),
    sa.column('salt', sa.LargeBinary()),
)


def _backfill(conn: sa.Connection) -> int:
    """A salt and a leaf for every event so far, in seq order; the number of leaves."""
    leaves = sa.table('log_leaves', sa.column('leaf_index'), sa.column('seq'), sa.column('commitment'))
    salt_of = sa.update(_EVENTS).where(_EVENTS.c.seq == sa.bindparam('b_seq')).values(salt=sa.bindparam('b_salt'))
    index, after = 0, 0
    while rows := conn.execute(sa.select(_EVENTS).where(_EVENTS.c.seq > after).order_by(_EVENTS.c.seq).limit(_BATCH)).all():
        salts, new_leaves = [], []
        for row in rows:
            salt = os.urandom(SALT_SIZE)
            event = LogEvent(
                seq=row.seq, kind=row.kind, occurred_at=row.occurred_at, actor=row.actor, report_id=row.report_id or '',
                subject_id='' if row.subject_id is None else f'S{row.subject_id}',
                listing_id='' if row.listing_id is None else f'L{row.listing_id}', detail=row.detail or {}, salt=salt,
            )
            salts.append({'b_seq': row.seq, 'b_salt': salt})
            new_leaves.append({'leaf_index': index, 'seq': row.seq, 'commitment': commitment(event)})
            index += 1
        conn.execute(salt_of, salts)
        conn.execute(sa.insert(leaves), new_leaves)
        after = rows[-1].seq
    return index


def downgrade() -> None:
    for name in ('witnesses', 'log_cosignatures', 'log_checkpoints', 'log_nodes', 'log_pending', 'log_leaves', 'log_state'):
        op.drop_table(name)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_report_id')
        batch_op.drop_column('salt')
