"""the booking function (a movement's locks, checks and account updates in one call), the
daily outgoing totals the cap reads, and no NOTIFY inside outbox-writing transactions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What ``stacklo.domain.movements.book`` asks of the accounts, done where the rows are, so a
# movement is one round trip instead of a lock, a read per check and a write. The rules are
# the domain's (``stacklo.domain.ledger``: apply_postings, hold, release, ensure_can_send;
# ``stacklo.domain.spending``: the daily cap, over ``daily_outgoing``), step for step and in the
# same order;
# tests/integration/test_booking_function.py holds both to the same answers.
#
# Refusals are raised with SQLSTATE SL001 and the domain's error code as the message (the
# detail names the wallet, or the amount already used today); a taken idempotency key is
# SL002. Anything else wrong (an unknown account, a currency mismatch, releasing more than is
# held) is a bug in the caller and raises SL000.
#
# Returns one row per posting (leg 1..n: the entry with its running balance) and one row per
# locked account (leg NULL: its final state, for the wallet events).
_FUNCTION = """
CREATE FUNCTION stacklo_book_accounts(
    p_wallets uuid[], p_currencies text[], p_amounts numeric[], p_releases numeric[],
    p_hold_wallets uuid[], p_hold_amounts numeric[],
    p_senders uuid[],
    p_cap_user uuid, p_cap_currency text, p_cap_day date, p_cap_limit numeric,
    p_cap_amount numeric,
    p_claim_user uuid, p_claim_key text, p_claim_operation text, p_claim_hash text,
    p_claim_response jsonb
) RETURNS TABLE (
    leg integer, wallet_id uuid, currency text, amount numeric, balance numeric, held numeric,
    status text, user_id uuid, kind text, created_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    ids uuid[];
    bals numeric[];
    hlds numeric[];
    kinds text[];
    codes text[];
    states text[];
    owners uuid[];
    created timestamptz[];
    w record;
    k integer;
    i integer;
    used numeric;
    top CONSTANT numeric := 10::numeric ^ 20;
BEGIN
    IF p_claim_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, operation, request_hash, response)
        VALUES (p_claim_user, p_claim_key, p_claim_operation, p_claim_hash, p_claim_response)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'IDEMPOTENCY_KEY_TAKEN' USING ERRCODE = 'SL002';
        END IF;
    END IF;

    -- 1. Lock in id order: two opposite movements cannot deadlock.
    ids := ARRAY(
        SELECT DISTINCT x FROM unnest(p_wallets || p_hold_wallets || p_senders) AS x ORDER BY x
    );
    FOR w IN SELECT * FROM wallets WHERE wallets.id = ANY(ids) ORDER BY wallets.id FOR UPDATE
    LOOP
        bals := bals || w.balance;
        hlds := hlds || w.held;
        kinds := kinds || w.kind::text;
        codes := codes || w.currency::text;
        states := states || w.status::text;
        owners := owners || w.user_id;
        created := created || w.created_at;
    END LOOP;
    IF coalesce(array_length(bals, 1), 0) <> coalesce(array_length(ids, 1), 0) THEN
        RAISE EXCEPTION 'an account of the movement does not exist' USING ERRCODE = 'SL000';
    END IF;

    -- 2. Checks that need the locked rows: senders may send, then the daily cap.
    FOR i IN 1 .. coalesce(array_length(p_senders, 1), 0) LOOP
        IF states[array_position(ids, p_senders[i])] = 'FROZEN' THEN
            RAISE EXCEPTION 'WALLET_FROZEN' USING ERRCODE = 'SL001', DETAIL = p_senders[i]::text;
        END IF;
    END LOOP;
    IF p_cap_limit IS NOT NULL THEN
        SELECT coalesce(sum(d.amount), 0) INTO used FROM daily_outgoing d
        WHERE d.user_id = p_cap_user AND d.currency = p_cap_currency AND d.day = p_cap_day;
        IF used + p_cap_amount > p_cap_limit THEN
            RAISE EXCEPTION 'LIMIT_EXCEEDED' USING ERRCODE = 'SL001', DETAIL = used::text;
        END IF;
    END IF;

    -- 3. Postings in order (each leg's running balance is its entry), then holds.
    FOR i IN 1 .. coalesce(array_length(p_wallets, 1), 0) LOOP
        k := array_position(ids, p_wallets[i]);
        IF codes[k] <> p_currencies[i] THEN
            RAISE EXCEPTION 'posting currency differs from the account''s' USING ERRCODE = 'SL000';
        END IF;
        bals[k] := bals[k] + p_amounts[i];
        hlds[k] := hlds[k] - p_releases[i];
        IF kinds[k] = 'CUSTOMER' AND (bals[k] < hlds[k] OR hlds[k] < 0) THEN
            RAISE EXCEPTION 'INSUFFICIENT_FUNDS' USING ERRCODE = 'SL001', DETAIL = p_wallets[i]::text;
        END IF;
        IF abs(bals[k]) >= top THEN
            RAISE EXCEPTION 'BALANCE_TOO_LARGE' USING ERRCODE = 'SL001', DETAIL = p_wallets[i]::text;
        END IF;
        leg := i; wallet_id := p_wallets[i]; currency := p_currencies[i];
        amount := p_amounts[i]; balance := bals[k];
        held := NULL; status := NULL; user_id := NULL; kind := NULL; created_at := NULL;
        RETURN NEXT;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_hold_wallets, 1), 0) LOOP
        k := array_position(ids, p_hold_wallets[i]);
        IF p_hold_amounts[i] > 0 THEN
            IF bals[k] - hlds[k] < p_hold_amounts[i] THEN
                RAISE EXCEPTION 'INSUFFICIENT_FUNDS'
                    USING ERRCODE = 'SL001', DETAIL = p_hold_wallets[i]::text;
            END IF;
        ELSIF hlds[k] < -p_hold_amounts[i] THEN
            RAISE EXCEPTION 'releasing more than is held' USING ERRCODE = 'SL000';
        END IF;
        hlds[k] := hlds[k] + p_hold_amounts[i];
    END LOOP;

    -- 4. Save every locked account; its final state is the wallet event's.
    UPDATE wallets SET balance = v.balance, held = v.held, updated_at = now()
    FROM unnest(ids, bals, hlds) AS v(id, balance, held) WHERE wallets.id = v.id;
    FOR k IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        leg := NULL; wallet_id := ids[k]; currency := codes[k]; amount := NULL;
        balance := bals[k]; held := hlds[k]; status := states[k]; user_id := owners[k];
        kind := kinds[k]; created_at := created[k];
        RETURN NEXT;
    END LOOP;
END
$$;
"""


# What each user sent and withdrew per currency per UTC day (failed and cancelled ones not
# counted), kept by a trigger as transactions are written and change status: the daily cap of
# unverified users reads one row instead of summing the day's transactions (twice a send).
_DAILY = (
    """
CREATE TABLE daily_outgoing (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    currency varchar(8) NOT NULL,
    day date NOT NULL,
    amount numeric(38, 18) NOT NULL,
    CONSTRAINT pk_daily_outgoing PRIMARY KEY (user_id, currency, day)
)""",
    """
INSERT INTO daily_outgoing (user_id, currency, day, amount)
SELECT initiator_id, currency, (created_at AT TIME ZONE 'UTC')::date, sum(amount)
FROM ledger_transactions
WHERE initiator_id IS NOT NULL AND kind IN ('TRANSFER', 'WITHDRAWAL')
  AND status NOT IN ('FAILED', 'CANCELLED')
GROUP BY 1, 2, 3""",
    """
CREATE FUNCTION stacklo_count_outgoing() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counted_before boolean := TG_OP = 'UPDATE'
        AND OLD.status NOT IN ('FAILED', 'CANCELLED');
    counted_now boolean := NEW.status NOT IN ('FAILED', 'CANCELLED');
    delta numeric;
BEGIN
    IF NEW.initiator_id IS NULL OR NEW.kind NOT IN ('TRANSFER', 'WITHDRAWAL')
       OR counted_before = counted_now THEN
        RETURN NULL;
    END IF;
    delta := CASE WHEN counted_now THEN NEW.amount ELSE -NEW.amount END;
    INSERT INTO daily_outgoing AS d (user_id, currency, day, amount)
    VALUES (NEW.initiator_id, NEW.currency, (NEW.created_at AT TIME ZONE 'UTC')::date, delta)
    ON CONFLICT (user_id, currency, day) DO UPDATE SET amount = d.amount + EXCLUDED.amount;
    RETURN NULL;
END
$$""",
    """
CREATE TRIGGER ledger_transactions_outgoing
AFTER INSERT OR UPDATE OF status ON ledger_transactions
FOR EACH ROW EXECUTE FUNCTION stacklo_count_outgoing()""",
)


def upgrade() -> None:
    for statement in _DAILY:
        op.execute(statement)
    op.execute(_FUNCTION)
    # The relay is woken from outside the committing transactions now (``OutboxBell``): a
    # NOTIFY inside one made every such commit wait its turn on the notification lock.
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION stacklo_notify_outbox()")


def downgrade() -> None:
    op.execute(
        """CREATE FUNCTION stacklo_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_notify('stacklo_outbox', ''); RETURN NULL; END $$"""
    )
    op.execute(
        """CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
           FOR EACH STATEMENT EXECUTE FUNCTION stacklo_notify_outbox()"""
    )
    op.execute("DROP TRIGGER ledger_transactions_outgoing ON ledger_transactions")
    op.execute("DROP FUNCTION stacklo_count_outgoing()")
    op.execute("DROP TABLE daily_outgoing")
    op.execute(
        "DROP FUNCTION stacklo_book_accounts(uuid[], text[], numeric[], numeric[], uuid[], "
        "numeric[], uuid[], uuid, text, date, numeric, numeric, uuid, text, text, text, "
        "jsonb)"
    )
