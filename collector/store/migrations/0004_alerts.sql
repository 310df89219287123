-- Alerts: a condition with first-seen, last-seen and resolved times, and the
-- events of its life. `payload` is the whole v1.Alert as proto3 JSON (the
-- evidence and details); the columns are what queries filter on.
CREATE TABLE alerts (
  id              bigserial PRIMARY KEY,
  kind            text NOT NULL,
  subject         text NOT NULL,
  severity        smallint NOT NULL,
  scope           smallint NOT NULL,
  hosts           text[] NOT NULL,
  remote_address  text NOT NULL,
  summary         text NOT NULL,
  first_seen      timestamptz NOT NULL,
  last_seen       timestamptz NOT NULL,
  resolved_at     timestamptz,
  acknowledged    boolean NOT NULL DEFAULT false,
  acknowledged_at timestamptz,
  acknowledged_by text NOT NULL DEFAULT '',
  payload         jsonb NOT NULL
);
-- One open alert per condition, even with several collectors.
CREATE UNIQUE INDEX alerts_open_subject ON alerts (kind, subject)
  WHERE resolved_at IS NULL;
CREATE INDEX alerts_last_seen ON alerts (last_seen);

CREATE TABLE alert_events (
  id        bigserial PRIMARY KEY,
  alert_id  bigint NOT NULL REFERENCES alerts (id),
  type      smallint NOT NULL,  -- v1.AlertEvent.Type
  at        timestamptz NOT NULL,
  payload   jsonb NOT NULL      -- the v1.AlertEvent
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- The analysis baselines, so a restarted collector knows what each agent
-- has already shown: known listeners, remotes and processes (value ''),
-- rolling latency and speed samples, stable routes, acknowledgements.
-- agent '*' holds what is global.
CREATE TABLE analysis_state (
  agent       text NOT NULL,
  kind        text NOT NULL,
  key         text NOT NULL,
  value       text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agent, kind, key)
);
