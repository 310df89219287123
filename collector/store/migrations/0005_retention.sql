-- Hourly aggregates, kept after the raw rows they summarise are deleted
-- (retention.raw_days), for retention.hourly_days.
CREATE TABLE path_hourly (
  agent_id      bigint NOT NULL REFERENCES agents (id),
  target        text NOT NULL,
  hour          timestamptz NOT NULL,
  runs          integer NOT NULL,
  reached_runs  integer NOT NULL,
  avg_loss      double precision NOT NULL,
  max_loss      double precision NOT NULL,
  avg_ms        double precision NOT NULL,  -- over runs that reached
  best_ms       double precision NOT NULL,
  worst_ms      double precision NOT NULL,
  PRIMARY KEY (agent_id, target, hour)
);

CREATE TABLE speed_hourly (
  agent_id   bigint NOT NULL REFERENCES agents (id),
  client     text NOT NULL,
  server     text NOT NULL,
  hour       timestamptz NOT NULL,
  runs       integer NOT NULL,
  ok_runs    integer NOT NULL,
  avg_bps    double precision NOT NULL,  -- over runs that succeeded
  min_bps    double precision NOT NULL,
  max_bps    double precision NOT NULL,
  PRIMARY KEY (agent_id, client, server, hour)
);

CREATE INDEX results_produced_at ON results (produced_at);
CREATE INDEX path_runs_started_at ON path_runs (started_at);
CREATE INDEX speed_results_started_at ON speed_results (started_at);
