"""inbound claims with a lease

An inbound message's claim (``inbound_events``) is completed only after Rasa has processed the
message: ``state`` is ``in_progress`` while its ``owner`` holds the lease (``lease_until``), ``done``
afterwards; a retry after the lease takes the claim over (``attempts`` + 1) instead of dropping it
(backend.services.channels). Claims made before this revision were completed at once: ``done``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 16:30:00
"""
from alembic import op
import sqlalchemy as sa



revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='done', nullable=False))
        batch_op.add_column(sa.Column('owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('done_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_column('done_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('owner')
        batch_op.drop_column('state')
