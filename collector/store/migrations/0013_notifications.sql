-- Notifications (README "Notifications"): one row per channel per alert
-- event that is news (opened, escalated, resolved), written in the same
-- transaction as the alert_events row, so an event is never lost between
-- the alert and its message. The sender (collector/notify/) claims due rows
-- (FOR UPDATE SKIP LOCKED, a lease in next_attempt_at), sends, and marks a
-- row sent only after the channel accepted it: at least once, and the
-- receiver sees the same event_id on a resend. Idempotent (IF NOT EXISTS):
-- least_privilege_test applies every migration from 0011 on a second time.
-- No foreign key to alert_events: retention may delete an event whose
-- message is still pending; the row carries its own copy (payload).
CREATE TABLE IF NOT EXISTS notify_outbox (
  id               bigserial PRIMARY KEY,
  event_id         bigint NOT NULL,        -- alert_events.id: the idempotency key
  channel          text NOT NULL,
  alert_id         bigint NOT NULL,
  news             text NOT NULL CHECK (news IN ('opened', 'escalated', 'resolved')),
  payload          jsonb NOT NULL,         -- the v1.AlertEvent
  state            text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'sent', 'expired')),
  attempts         integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL,
  next_attempt_at  timestamptz NOT NULL,
  sent_at          timestamptz,
  last_error       text NOT NULL DEFAULT '',
  UNIQUE (event_id, channel)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (next_attempt_at)
  WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS notify_outbox_sent ON notify_outbox (channel, alert_id, sent_at)
  WHERE state = 'sent';
