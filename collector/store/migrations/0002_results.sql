-- Every numbered result an agent delivered, as its netvigil.v1.Result bytes.
-- The primary key makes a resend after a crash harmless (nothing twice).
CREATE TABLE results (
  agent_id     bigint NOT NULL REFERENCES agents (id),
  seq          bigint NOT NULL,
  kind         text NOT NULL,
  produced_at  timestamptz NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  command_id   text NOT NULL DEFAULT '',
  payload      bytea NOT NULL,
  PRIMARY KEY (agent_id, seq)
);
CREATE INDEX results_kind_time ON results (agent_id, kind, produced_at);
