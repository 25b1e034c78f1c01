"""complaint drafts and other categories

Adds ``complaint_tickets.other_categories`` (JSON list of category codes besides the main one;
existing tickets get ``[]``). The new status ``draft`` and the event kinds ``drafted`` /
``completed`` need no DDL: the enums are stored as VARCHAR(20) without a CHECK constraint
(backend.models.base.StrEnum), and the new values fit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('complaint_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('other_categories', sa.JSON(), server_default=sa.text("'[]'"),
                                      nullable=False))


def downgrade() -> None:
    # Drafts have no status to go back to: they become received tickets (the borrower voiced the complaint).
    op.execute("UPDATE complaint_tickets SET status = 'received' WHERE status = 'draft'")
    op.execute("UPDATE complaint_events SET kind = 'opened' WHERE kind = 'drafted'")
    op.execute("UPDATE complaint_events SET kind = 'follow_up' WHERE kind = 'completed'")
    op.execute("UPDATE complaint_events SET from_status = 'received' WHERE from_status = 'draft'")
    op.execute("UPDATE complaint_events SET to_status = 'received' WHERE to_status = 'draft'")
    with op.batch_alter_table('complaint_tickets', schema=None) as batch_op:
        batch_op.drop_column('other_categories')
