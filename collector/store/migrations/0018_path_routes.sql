-- Path hops stored by what changes (issue 20, README "Storage: what is
-- kept"). A path run kept its whole PathRun as its result payload (about
-- 817 bytes a run, which lz4 does not shrink) because the hops were only
-- there. Now:
--   path_routes   each route an agent's runs took (per hop the TTL, the
--                 destination flag and the addresses that answered,
--                 collector/store/path_pack.h PackPathRoute), once per
--                 agent and route, found again by its SHA-256;
--   path_runs     route_id (the run's route) and figures (per hop sent,
--                 received and the five millisecond figures as integer
--                 microseconds, PackPathFigures: about 12 bytes a hop);
-- and the run's result keeps no payload. Rows stored before this migration
-- keep their payload and have neither column set: PathHistory reads them
-- from the payload, as before, until retention drops them. Nothing is
-- moved or rewritten.
--
-- A route is last_used at the newest run that took it, moved forward at
-- most once a day (so a route taken every minute is not rewritten every
-- minute); retention deletes routes not used for a day more than raw runs
-- are kept, which no kept run can still name. An agent adds at most one
-- route a run. Keys lead with agent_id (distribution by agent). Applied
-- again, this changes nothing.
CREATE TABLE IF NOT EXISTS path_routes (
  agent_id   bigint NOT NULL REFERENCES agents (id),
  id         bigint GENERATED ALWAYS AS IDENTITY,
  digest     bytea NOT NULL,        -- sha256(hops)
  hops       bytea NOT NULL,        -- PackPathRoute, format 1
  last_used  timestamptz NOT NULL,  -- the newest run's start, within a day
  PRIMARY KEY (agent_id, id),
  UNIQUE (agent_id, digest)
);
ALTER TABLE path_runs ADD COLUMN IF NOT EXISTS route_id bigint;
ALTER TABLE path_runs ADD COLUMN IF NOT EXISTS figures bytea;
