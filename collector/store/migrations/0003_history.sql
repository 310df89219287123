-- History kept as what changed. A snapshot that changes nothing adds only its
-- own row in `results` and moves probe_state's pointer.

-- The latest result of each kind per agent; facts that are present were
-- last seen at last_at.
CREATE TABLE probe_state (
  agent_id  bigint NOT NULL REFERENCES agents (id),
  kind      text NOT NULL,
  last_seq  bigint NOT NULL,
  last_at   timestamptz NOT NULL,
  PRIMARY KEY (agent_id, kind)
);

-- Socket facts: listener (proto, local address, port, exe), remote (proto,
-- exe, remote address, remote port) and inbound (proto, exe, local port,
-- remote address). Unused key parts are '' and 0.
CREATE TABLE socket_facts (
  agent_id       bigint NOT NULL REFERENCES agents (id),
  key_kind       text NOT NULL,
  proto          smallint NOT NULL,
  local_address  text NOT NULL,
  local_port     integer NOT NULL,
  remote_address text NOT NULL,
  remote_port    integer NOT NULL,
  exe            text NOT NULL,
  process_name   text NOT NULL,
  first_seen     timestamptz NOT NULL,
  last_seen      timestamptz NOT NULL,  -- when present: see probe_state
  present        boolean NOT NULL,
  PRIMARY KEY (agent_id, key_kind, proto, local_address, local_port,
               remote_address, remote_port, exe)
);

CREATE TABLE socket_events (
  id             bigserial PRIMARY KEY,
  agent_id       bigint NOT NULL REFERENCES agents (id),
  seq            bigint NOT NULL,
  at             timestamptz NOT NULL,
  change         text NOT NULL,  -- appeared, gone
  key_kind       text NOT NULL,
  proto          smallint NOT NULL,
  local_address  text NOT NULL,
  local_port     integer NOT NULL,
  remote_address text NOT NULL,
  remote_port    integer NOT NULL,
  exe            text NOT NULL,
  process_name   text NOT NULL
);
CREATE INDEX socket_events_agent_at ON socket_events (agent_id, at);

-- File facts: (exe, path, kind).
CREATE TABLE file_facts (
  agent_id     bigint NOT NULL REFERENCES agents (id),
  exe          text NOT NULL,
  path         text NOT NULL,
  kind         smallint NOT NULL,
  process_name text NOT NULL,
  uid          bigint NOT NULL,
  deleted      boolean NOT NULL,
  first_seen   timestamptz NOT NULL,
  last_seen    timestamptz NOT NULL,
  present      boolean NOT NULL,
  PRIMARY KEY (agent_id, exe, path, kind)
);

CREATE TABLE file_events (
  id           bigserial PRIMARY KEY,
  agent_id     bigint NOT NULL REFERENCES agents (id),
  seq          bigint NOT NULL,
  at           timestamptz NOT NULL,
  change       text NOT NULL,
  exe          text NOT NULL,
  path         text NOT NULL,
  kind         smallint NOT NULL,
  process_name text NOT NULL
);
CREATE INDEX file_events_agent_at ON file_events (agent_id, at);

-- Path runs: the destination's figures per run, for overviews and trends;
-- the hops are in the run's result payload.
CREATE TABLE path_runs (
  agent_id            bigint NOT NULL REFERENCES agents (id),
  seq                 bigint NOT NULL,
  target              text NOT NULL,
  resolved_address    text NOT NULL,
  started_at          timestamptz NOT NULL,
  destination_reached boolean NOT NULL,
  loss_percent        double precision NOT NULL,
  avg_ms              double precision NOT NULL,
  best_ms             double precision NOT NULL,
  worst_ms            double precision NOT NULL,
  hop_count           integer NOT NULL,
  error               text NOT NULL,
  PRIMARY KEY (agent_id, seq)
);
CREATE INDEX path_runs_agent_target_at ON path_runs (agent_id, target, started_at);

CREATE TABLE speed_results (
  agent_id      bigint NOT NULL REFERENCES agents (id),
  seq           bigint NOT NULL,
  client        text NOT NULL,
  server        text NOT NULL,
  external      boolean NOT NULL,
  started_at    timestamptz NOT NULL,
  finished_at   timestamptz NOT NULL,
  outcome       smallint NOT NULL,
  error         text NOT NULL,
  forward_bps   double precision NOT NULL,  -- what the server received
  reverse_bps   double precision NOT NULL,  -- what the client received
  retransmits   bigint NOT NULL,
  schedule_id   text NOT NULL,
  PRIMARY KEY (agent_id, seq)
);
CREATE INDEX speed_results_pair_at ON speed_results (client, server, started_at);

-- Results an agent could not keep: "N results lost on host X between T1
-- and T2".
CREATE TABLE gaps (
  agent_id   bigint NOT NULL REFERENCES agents (id),
  seq        bigint NOT NULL,
  first_seq  bigint NOT NULL,
  last_seq   bigint NOT NULL,
  count      bigint NOT NULL,
  first_at   timestamptz,
  last_at    timestamptz,
  reason     text NOT NULL,
  PRIMARY KEY (agent_id, seq)
);

-- Speed results the collector made itself (a test skipped because an agent
-- was offline, or never answered) belong to no agent's numbering: they take
-- negative sequence numbers from here, so they can never collide with an
-- agent's own.
CREATE SEQUENCE collector_result_seq;
