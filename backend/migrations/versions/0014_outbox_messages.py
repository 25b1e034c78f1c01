"""outbox of outgoing messages

Every message the backend says to a borrower (decision notices, outreach) is rendered by the backend
and written to ``outbox_messages`` (a decision's in the decision's own transaction); a worker delivers
it through Rasa's HTTP API (backend.services.outreach.outbox).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 10:00:00
"""
from alembic import op
import sqlalchemy as sa



revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('due_in_3_days', 'due_in_1_day', 'due_today', 'overdue_1', 'overdue_3', 'overdue_7', 'overdue_15', 'overdue_30', 'hardship_offer', 'promise_reminder', 'csat_followup', 'plan_decision', 'complaint_update', name='outreach_kind', native_enum=False, length=20), nullable=False),
    sa.Column('conversation', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.Enum('wechat', 'sms', 'web', name='channel', native_enum=False, length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'sending', 'sent', 'failed', name='outbox_status', native_enum=False, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['outreach_notices.id'], name=op.f('fk_outbox_messages_notice_id_outreach_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_status', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_notice_id'))

    op.drop_table('outbox_messages')
