"""seal the audit chain inside PostgreSQL's commit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Every writing transaction seals its audit rows under the chain head's row lock. Sealed
by a statement from Python, the lock was held until the COMMIT could be sent, i.e. for a
turn of the server's event loop: under load, every writer of the platform queued behind
that turn (docs/performance.md). A deferred constraint trigger seals each row while
PostgreSQL commits, so the lock is held for the commit itself only.

The trigger hashes exactly what `events.chain.link_hash` does, from the canonical bytes
Python stored around the index (`seal_before`, `seal_after`), and clears them; Python
re-checks every link in `GET /audit/verify` (and after every test). SQLite keeps sealing
in Python: its single writer holds the whole file anyway.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEAL_FUNCTION = """
CREATE FUNCTION audit_record_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_index bigint;
    head_hash text;
    link_hash text;
BEGIN
    SELECT last_index, last_hash INTO head_index, head_hash
        FROM audit_chain_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_head (id, last_index, last_hash)
            VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
        SELECT last_index, last_hash INTO head_index, head_hash
            FROM audit_chain_head WHERE id = 1 FOR UPDATE;
    END IF;
    head_index := head_index + 1;
    link_hash := encode(sha256(
        convert_to(head_hash || chr(10), 'UTF8') || NEW.seal_before
        || convert_to(head_index::text, 'UTF8') || NEW.seal_after), 'hex');
    UPDATE audit_record
        SET chain_index = head_index, prev_hash = head_hash, hash = link_hash,
            seal_before = NULL, seal_after = NULL
        WHERE sequence = NEW.sequence;
    UPDATE audit_chain_head SET last_index = head_index, last_hash = link_hash WHERE id = 1;
    RETURN NULL;
END
$$
"""

SEAL_TRIGGER = """
CREATE CONSTRAINT TRIGGER audit_record_sealed_at_commit
    AFTER INSERT ON audit_record
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.seal_before IS NOT NULL)
    EXECUTE FUNCTION audit_record_seal()
"""


def upgrade() -> None:
    with op.batch_alter_table('audit_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal_before', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('seal_after', sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(SEAL_FUNCTION)
        op.execute(SEAL_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER audit_record_sealed_at_commit ON audit_record")
        op.execute("DROP FUNCTION audit_record_seal()")
    with op.batch_alter_table('audit_record', schema=None) as batch_op:
        batch_op.drop_column('seal_after')
        batch_op.drop_column('seal_before')
