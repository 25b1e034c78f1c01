"""personal numbers encrypted at rest, with lookup hashes (PIPL Art. 51)

* ``customers.phone`` and ``customers.id_number``: Fernet-encrypted (TEXT) with the keyed lookup
  hashes ``phone_hash`` (unique instead of the phone) and ``id_number_hash`` (indexed), and
  ``id_last4`` (what identity checks compare and responses show).
* ``channel_identities.external_id``: encrypted (TEXT) with ``external_id_hash``; the unique
  constraint ``uq_identity_channel_external`` moves to (channel, external_id_hash).
* ``conversation_sessions.conversation``: an SMS number becomes its keyed hash ("sms:#<hash>").
* ``outreach_notices.conversation`` and ``payload["conversation"]``: an SMS number becomes a
  deterministic token ("sms:~<token>").

Existing rows are encrypted and hashed in place with the keys of the running process
(PII_ENCRYPTION_KEY, PII_HASH_KEY; backend.core.crypto). Downgrade decrypts them again; the hashed
session conversations cannot come back (the number is gone by design) and stay hashed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 10:00:00
"""
import json

import sqlalchemy as sa
from alembic import op

from backend.core import crypto

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

customers = sa.table('customers', sa.column('id', sa.Integer), sa.column('phone', sa.Text),
                     sa.column('phone_hash', sa.String), sa.column('id_number', sa.Text),
                     sa.column('id_number_hash', sa.String), sa.column('id_last4', sa.String))
identities = sa.table('channel_identities', sa.column('id', sa.Integer), sa.column('external_id', sa.Text),
                      sa.column('external_id_hash', sa.String))
sessions = sa.table('conversation_sessions', sa.column('id', sa.Integer), sa.column('conversation', sa.String))
notices = sa.table('outreach_notices', sa.column('id', sa.Integer), sa.column('conversation', sa.String),
                   sa.column('payload', sa.Text))


def _payload(raw):
    if raw is None:
        return None
    return raw if isinstance(raw, dict) else json.loads(raw)


def _foreign_keys(bind, on: bool) -> None:
    """SQLite recreates customers and channel_identities (batch mode), which other rows reference;
    its foreign-key switch only works outside a transaction (SQLite's own recipe for rebuilding a
    table): off around the rebuild, then on again with a check that every reference still holds."""
    if bind.dialect.name != 'sqlite':
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    if on:
        broken = bind.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
        if broken:
            raise RuntimeError(f'foreign keys broken by the table rebuild: {broken[:5]}')


def upgrade() -> None:
    bind = op.get_bind()
    _foreign_keys(bind, on=False)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint('uq_customers_phone', type_='unique')
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.Text(), existing_nullable=False)
        batch_op.alter_column('id_number', existing_type=sa.String(length=18), type_=sa.Text(), existing_nullable=False)
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('id_number_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('id_last4', sa.String(length=4), nullable=True))
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_constraint('uq_identity_channel_external', type_='unique')
        batch_op.alter_column('external_id', existing_type=sa.String(length=64), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('external_id_hash', sa.String(length=64), nullable=True))

    c = crypto.cipher()
    for row in bind.execute(sa.select(customers.c.id, customers.c.phone, customers.c.id_number)).all():
        bind.execute(customers.update().where(customers.c.id == row.id).values(
            phone=c.encrypt(row.phone), phone_hash=c.lookup_hash(row.phone),
            id_number=c.encrypt(row.id_number), id_number_hash=c.lookup_hash(row.id_number),
            id_last4=row.id_number[-4:].upper()))
    for row in bind.execute(sa.select(identities.c.id, identities.c.external_id)).all():
        bind.execute(identities.update().where(identities.c.id == row.id).values(
            external_id=c.encrypt(row.external_id), external_id_hash=c.lookup_hash(row.external_id)))
    for row in bind.execute(sa.select(sessions.c.id, sessions.c.conversation)
                            .where(sessions.c.conversation.like('sms:%'))).all():
        hashed = crypto.hash_conversation(row.conversation)
        if hashed != row.conversation:
            bind.execute(sessions.update().where(sessions.c.id == row.id).values(conversation=hashed))
    _notices(bind, crypto.tokenize_conversation)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('phone_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('id_number_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('id_last4', existing_type=sa.String(length=4), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_customers_phone_hash'), ['phone_hash'])
        batch_op.create_index(batch_op.f('ix_customers_id_number_hash'), ['id_number_hash'], unique=False)
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.alter_column('external_id_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_identity_channel_external', ['channel', 'external_id_hash'])
    _foreign_keys(bind, on=True)


def _notices(bind, convert) -> None:
    """Rewrite outreach_notices' conversation and payload["conversation"] with ``convert``."""
    rows = bind.execute(sa.select(notices.c.id, notices.c.conversation, notices.c.payload)).all()
    for row in rows:
        values = {}
        new = convert(row.conversation)
        if new != row.conversation:
            values['conversation'] = new
        payload = _payload(row.payload)
        if isinstance(payload, dict) and isinstance(payload.get('conversation'), str):
            conv = convert(payload['conversation'])
            if conv != payload['conversation']:
                values['payload'] = json.dumps({**payload, 'conversation': conv}, ensure_ascii=False)
        if values:
            if 'payload' in values and bind.dialect.name == 'postgresql':
                bind.execute(sa.text('UPDATE outreach_notices SET payload = CAST(:p AS JSON) WHERE id = :id'),
                             {'p': values.pop('payload'), 'id': row.id})
            if values:
                bind.execute(notices.update().where(notices.c.id == row.id).values(**values))


def downgrade() -> None:
    bind = op.get_bind()
    _foreign_keys(bind, on=False)
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_constraint('uq_identity_channel_external', type_='unique')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_id_number_hash'))
        batch_op.drop_constraint(batch_op.f('uq_customers_phone_hash'), type_='unique')

    c = crypto.cipher()
    for row in bind.execute(sa.select(customers.c.id, customers.c.phone, customers.c.id_number)).all():
        bind.execute(customers.update().where(customers.c.id == row.id).values(
            phone=c.decrypt(row.phone), id_number=c.decrypt(row.id_number)))
    for row in bind.execute(sa.select(identities.c.id, identities.c.external_id)).all():
        bind.execute(identities.update().where(identities.c.id == row.id).values(
            external_id=c.decrypt(row.external_id)))
    _notices(bind, crypto.detokenize_conversation)

    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_column('external_id_hash')
        batch_op.alter_column('external_id', existing_type=sa.Text(), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.create_unique_constraint('uq_identity_channel_external', ['channel', 'external_id'])
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('id_last4')
        batch_op.drop_column('id_number_hash')
        batch_op.drop_column('phone_hash')
        batch_op.alter_column('id_number', existing_type=sa.Text(), type_=sa.String(length=18), existing_nullable=False)
        batch_op.alter_column('phone', existing_type=sa.Text(), type_=sa.String(length=20), existing_nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_customers_phone'), ['phone'])
    _foreign_keys(bind, on=True)
