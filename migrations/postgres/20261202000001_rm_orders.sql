-- Every order as the read models keep it: its customer's order list, the sweeper's list of orders
-- whose payment is overdue, and what order subscriptions are told. The truth is the Order stream.
CREATE TABLE rm_orders
(
    order_id      uuid PRIMARY KEY,
    event_id      uuid        NOT NULL,
    customer_id   text        NOT NULL,
    status        text        NOT NULL,
    holds         uuid[]      NOT NULL,
    seats         integer[]   NOT NULL,
    seat_count    integer     NOT NULL,
    amount_cents  bigint      NOT NULL,
    currency      text        NOT NULL,
    payment_due   timestamptz NOT NULL,
    refund_reason text,
    payment_intent text,
    placed_at     timestamptz NOT NULL,
    paid_at       timestamptz,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL
);

CREATE INDEX rm_orders_by_customer ON rm_orders (customer_id, placed_at);
CREATE INDEX rm_orders_by_event ON rm_orders (event_id, status);
CREATE INDEX rm_orders_awaiting_payment ON rm_orders (payment_due) WHERE status = 'pending_payment';
