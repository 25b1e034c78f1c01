"""SMS numbers in conversation ids tokenised everywhere they are kept (PIPL Art. 51)

The conversation ids that still held a full mobile number in clear ("sms:+8613812345678") get it as
a deterministic AES-SIV token ("sms:~<token>", backend.core.crypto.TokenizedConversation, as
``outreach_notices.conversation`` since 0012): equal conversations stay equal in SQL, so every lookup
by conversation keeps working, and the number comes back with the key.

* ``complaint_tickets.conversation``, ``otp_challenges.conversation``, ``handoff_cases.conversation``
  and ``active_conversation``, ``plan_requests.conversation``, ``settlement_intents.conversation``;
* ``audit_log.entity_id`` (verification events name their conversation; the column widens from 40
  to 100 characters: a token is longer than the number) and ``audit_log.detail["conversation"]``.

The web chat's sign-in conversations ("weblogin:13812345678", in ``otp_challenges`` and the audit log)
are tokenised the same way ("weblogin:~<token>"). WeChat, web and anonymised ids are left as they are. Existing rows are tokenised in place with the
key of the running process (PII_ENCRYPTION_KEY); downgrade puts the numbers back in clear.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-11 10:00:00
"""
import sqlalchemy as sa
from alembic import op

from backend.core import crypto

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# table -> its columns holding a conversation id
COLUMNS = {
    'complaint_tickets': ('conversation',),
    'otp_challenges': ('conversation',),
    'handoff_cases': ('conversation', 'active_conversation'),
    'plan_requests': ('conversation',),
    'settlement_intents': ('conversation',),
    'audit_log': ('entity_id',),
}
audit = sa.table('audit_log', sa.column('id', sa.Integer), sa.column('detail', sa.JSON))


def _convert(bind, convert, suffix: str) -> None:
    """Rewrite every conversation value of a tokenised channel ("<channel>:<suffix>...") with ``convert``."""
    for table, columns in COLUMNS.items():
        t = sa.table(table, sa.column('id', sa.Integer), *[sa.column(c, sa.String) for c in columns])
        for column in columns:
            col = t.c[column]
            matches = sa.or_(*[col.like(f'{channel}:{suffix}%') for channel in crypto.TOKENISED_CHANNELS])
            for row in bind.execute(sa.select(t.c.id, col).where(matches)).all():
                new = convert(row[1])
                if new != row[1]:
                    bind.execute(t.update().where(t.c.id == row.id).values({column: new}))
    # audit_log.detail["conversation"] (verification.code_sent, verification.verified)
    rows = bind.execute(sa.select(audit.c.id, audit.c.detail)
                        .where(sa.cast(audit.c.detail, sa.Text).like('%"conversation"%'))).all()
    for row in rows:
        detail = row.detail
        if isinstance(detail, dict) and isinstance(detail.get('conversation'), str):
            conv = convert(detail['conversation'])
            if conv != detail['conversation']:
                bind.execute(audit.update().where(audit.c.id == row.id).values(detail={**detail, 'conversation': conv}))


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('entity_id', existing_type=sa.String(length=40), type_=sa.String(length=100),
                              existing_nullable=False)
    _convert(op.get_bind(), crypto.tokenize_conversation, '')


def downgrade() -> None:
    _convert(op.get_bind(), crypto.detokenize_conversation, '~')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('entity_id', existing_type=sa.String(length=100), type_=sa.String(length=40),
                              existing_nullable=False)
