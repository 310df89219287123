-- Time partitioning (issue 20, README "Storage"): the big time tables are
-- partitioned by UTC day, the hourly aggregates by UTC month, so retention
-- drops whole partitions instead of deleting row by row (no dead tuples, no
-- vacuum debt, a day's retention in milliseconds).
--
--   results        produced_at  day    PK (agent_id, seq, produced_at)
--   path_runs      started_at   day    PK (agent_id, seq, started_at)
--   speed_results  started_at   day    PK (agent_id, seq, started_at)
--   socket_events  at           day    PK (agent_id, at, id)
--   file_events    at           day    PK (agent_id, at, id)
--   path_hourly    hour         month  PK (agent_id, target, hour)
--   speed_hourly   hour         month  PK (agent_id, client, server, hour)
--
-- A partitioned table's unique keys must hold the partition key, so
-- (agent_id, seq) alone is no longer a constraint of results: "nothing
-- twice" rests on agents.acked_through_seq, read under the agent row's lock
-- in the ingest transaction (a result at or below it is a resend and is not
-- inserted), and the primary key still refuses the same result twice. Every
-- key leads with agent_id, so the tables can be distributed by agent
-- (Citus) without a key change.
--
-- Partitions live in schema nv_part (named PARENT_pYYYYMMDD or
-- PARENT_pYYYYMM, bounds in UTC); each parent has a DEFAULT partition
-- (PARENT_default) for a row no partition covers, so an insert never fails
-- for want of a partition. The collector creates partitions ahead of time
-- and on demand (nv_ensure_partition); retention drops them
-- (nv_drop_partitions). Readers only ever name the parents: privileges are
-- checked on the parent, so the dashboard role needs nothing in nv_part.
--
-- Every row of today's tables is kept: each table is renamed, its
-- partitioned successor created, the rows moved, the old table dropped, all
-- in this migration's one transaction. Applied again (a test replays the
-- migrations after 0011 on a database that has them), it changes nothing.
CREATE SCHEMA IF NOT EXISTS nv_part;

-- The partition of `parent` (a table of schema public partitioned by `unit`,
-- 'day' or 'month') that holds time `t`: made if missing, with the rows of
-- the DEFAULT partition that belong to it moved in. Returns true if it made
-- it. Safe against concurrent callers (an advisory lock per partition).
CREATE OR REPLACE FUNCTION nv_ensure_partition(parent text, unit text, t timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  lo timestamptz;
  hi timestamptz;
  part text;
  col text;
BEGIN
  IF unit NOT IN ('day', 'month') THEN
    RAISE EXCEPTION 'nv_ensure_partition: unit % is not day or month', unit;
  END IF;
  lo := date_trunc(unit, t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  hi := ((lo AT TIME ZONE 'UTC') + ('1 ' || unit)::interval) AT TIME ZONE 'UTC';
  part := parent || '_p' || to_char(lo AT TIME ZONE 'UTC',
                                    CASE unit WHEN 'day' THEN 'YYYYMMDD'
                                              ELSE 'YYYYMM' END);
  IF to_regclass('nv_part.' || quote_ident(part)) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('nv_part.' || part));
  IF to_regclass('nv_part.' || quote_ident(part)) IS NOT NULL THEN
    RETURN false;
  END IF;
  SELECT a.attname INTO STRICT col
  FROM pg_partitioned_table p
  JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
  WHERE p.partrelid = ('public.' || quote_ident(parent))::regclass;
  EXECUTE format('CREATE TABLE nv_part.%I (LIKE public.%I INCLUDING DEFAULTS'
                 ' INCLUDING CONSTRAINTS INCLUDING STORAGE'
                 ' INCLUDING COMPRESSION)', part, parent);
  EXECUTE format('WITH m AS (DELETE FROM nv_part.%I WHERE %I >= $1'
                 ' AND %I < $2 RETURNING *) INSERT INTO nv_part.%I'
                 ' SELECT * FROM m', parent || '_default', col, col, part)
    USING lo, hi;
  -- ATTACH (not CREATE ... PARTITION OF) takes only a SHARE UPDATE
  -- EXCLUSIVE lock on the parent: ingest goes on meanwhile.
  EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION nv_part.%I'
                 ' FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
  RETURN true;
END $$;

-- Drops every partition of `parent` whose rows are all older than `before`
-- (its upper bound at or before it) and deletes the DEFAULT partition's
-- rows older than it. Returns the number of partitions dropped.
CREATE OR REPLACE FUNCTION nv_drop_partitions(parent text, before timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  r record;
  hi timestamptz;
  col text;
  n integer := 0;
BEGIN
  SELECT a.attname INTO STRICT col
  FROM pg_partitioned_table p
  JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
  WHERE p.partrelid = ('public.' || quote_ident(parent))::regclass;
  FOR r IN
    SELECT c.oid::regclass AS part, pg_get_expr(c.relpartbound, c.oid) AS b
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = ('public.' || quote_ident(parent))::regclass
  LOOP
    CONTINUE WHEN r.b = 'DEFAULT';
    hi := substring(r.b FROM 'TO \(''([^'']*)''\)')::timestamptz;
    IF hi <= before THEN
      EXECUTE format('DROP TABLE %s', r.part);
      n := n + 1;
    END IF;
  END LOOP;
  EXECUTE format('DELETE FROM nv_part.%I WHERE %I < $1', parent || '_default',
                 col) USING before;
  RETURN n;
END $$;

-- Converts one table: `old` is today's table renamed, `parent` its
-- partitioned successor (created by the caller with its keys), `col` the
-- partition key. Makes the DEFAULT partition and one partition per unit
-- that holds rows, moves the rows, drops `old`.
CREATE OR REPLACE FUNCTION nv_convert_to_partitions(old text, parent text, unit text,
                                         col text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz;
BEGIN
  EXECUTE format('CREATE TABLE nv_part.%I PARTITION OF public.%I DEFAULT',
                 parent || '_default', parent);
  FOR t IN EXECUTE format('SELECT DISTINCT date_trunc(%L, %I AT TIME ZONE'
                          ' ''UTC'') AT TIME ZONE ''UTC'' FROM public.%I',
                          unit, col, old)
  LOOP
    PERFORM nv_ensure_partition(parent, unit, t);
  END LOOP;
  EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', parent, old);
  EXECUTE format('DROP TABLE public.%I', old);
END $$;

-- results: payload may now be NULL (README "Storage"): a socket or
-- file snapshot keeps its whole payload only when it is the first of its
-- UTC day for its agent and kind; the others are described by the facts
-- and events tables and keep their row (sequence, kind, time) alone.
DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.results'::regclass) = 'r' THEN
    ALTER TABLE results RENAME TO results_old;
    ALTER TABLE results_old DROP CONSTRAINT results_pkey;
    DROP INDEX results_kind_time;
    DROP INDEX results_produced_at;
    CREATE TABLE results (LIKE results_old INCLUDING DEFAULTS
                          INCLUDING COMPRESSION INCLUDING STORAGE,
                          FOREIGN KEY (agent_id) REFERENCES agents (id),
                          PRIMARY KEY (agent_id, seq, produced_at))
      PARTITION BY RANGE (produced_at);
    ALTER TABLE results ALTER COLUMN payload DROP NOT NULL;
    -- Only the kept payloads are looked up by kind and time (which snapshots
    -- of a day already have one): a partial index, two rows an agent a day
    -- instead of every result.
    CREATE INDEX results_kept_payloads ON results (agent_id, kind, produced_at)
      WHERE payload IS NOT NULL;
    PERFORM nv_convert_to_partitions('results_old', 'results', 'day',
                                    'produced_at');
  END IF;
END $$;

DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.path_runs'::regclass) = 'r' THEN
    ALTER TABLE path_runs RENAME TO path_runs_old;
    ALTER TABLE path_runs_old DROP CONSTRAINT path_runs_pkey;
    DROP INDEX path_runs_agent_target_at;
    DROP INDEX path_runs_started_at;
    CREATE TABLE path_runs (LIKE path_runs_old INCLUDING DEFAULTS,
                            FOREIGN KEY (agent_id) REFERENCES agents (id),
                            PRIMARY KEY (agent_id, seq, started_at))
      PARTITION BY RANGE (started_at);
    CREATE INDEX path_runs_agent_target_at
      ON path_runs (agent_id, target, started_at);
    PERFORM nv_convert_to_partitions('path_runs_old', 'path_runs', 'day',
                                    'started_at');
  END IF;
END $$;

DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.speed_results'::regclass) = 'r' THEN
    ALTER TABLE speed_results RENAME TO speed_results_old;
    ALTER TABLE speed_results_old DROP CONSTRAINT speed_results_pkey;
    DROP INDEX speed_results_pair_at;
    DROP INDEX speed_results_started_at;
    DROP INDEX speed_results_lan_pair_at;
    CREATE TABLE speed_results (LIKE speed_results_old INCLUDING DEFAULTS,
                                FOREIGN KEY (agent_id) REFERENCES agents (id),
                                PRIMARY KEY (agent_id, seq, started_at))
      PARTITION BY RANGE (started_at);
    CREATE INDEX speed_results_pair_at
      ON speed_results (client, server, started_at);
    CREATE INDEX speed_results_lan_pair_at
      ON speed_results (client, server, started_at) WHERE NOT external;
    PERFORM nv_convert_to_partitions('speed_results_old', 'speed_results', 'day',
                                    'started_at');
  END IF;
END $$;

-- The events' ids stay (SocketChanges orders by at, id): the sequence moves
-- to the new table.
DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.socket_events'::regclass) = 'r' THEN
    ALTER TABLE socket_events RENAME TO socket_events_old;
    ALTER TABLE socket_events_old DROP CONSTRAINT socket_events_pkey;
    DROP INDEX socket_events_agent_at;
    ALTER SEQUENCE socket_events_id_seq OWNED BY NONE;
    CREATE TABLE socket_events (LIKE socket_events_old INCLUDING DEFAULTS,
                                FOREIGN KEY (agent_id) REFERENCES agents (id),
                                PRIMARY KEY (agent_id, at, id))
      PARTITION BY RANGE (at);
    ALTER SEQUENCE socket_events_id_seq OWNED BY socket_events.id;
    PERFORM nv_convert_to_partitions('socket_events_old', 'socket_events', 'day',
                                    'at');
  END IF;
END $$;

DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.file_events'::regclass) = 'r' THEN
    ALTER TABLE file_events RENAME TO file_events_old;
    ALTER TABLE file_events_old DROP CONSTRAINT file_events_pkey;
    DROP INDEX file_events_agent_at;
    ALTER SEQUENCE file_events_id_seq OWNED BY NONE;
    CREATE TABLE file_events (LIKE file_events_old INCLUDING DEFAULTS,
                              FOREIGN KEY (agent_id) REFERENCES agents (id),
                              PRIMARY KEY (agent_id, at, id))
      PARTITION BY RANGE (at);
    ALTER SEQUENCE file_events_id_seq OWNED BY file_events.id;
    PERFORM nv_convert_to_partitions('file_events_old', 'file_events', 'day',
                                    'at');
  END IF;
END $$;

DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.path_hourly'::regclass) = 'r' THEN
    ALTER TABLE path_hourly RENAME TO path_hourly_old;
    ALTER TABLE path_hourly_old DROP CONSTRAINT path_hourly_pkey;
    CREATE TABLE path_hourly (LIKE path_hourly_old INCLUDING DEFAULTS,
                              FOREIGN KEY (agent_id) REFERENCES agents (id),
                              PRIMARY KEY (agent_id, target, hour))
      PARTITION BY RANGE (hour);
    PERFORM nv_convert_to_partitions('path_hourly_old', 'path_hourly', 'month',
                                    'hour');
  END IF;
END $$;

DO $$ BEGIN
  -- Already partitioned (the migration applied again): nothing to do.
  IF (SELECT relkind FROM pg_class WHERE oid = 'public.speed_hourly'::regclass) = 'r' THEN
    ALTER TABLE speed_hourly RENAME TO speed_hourly_old;
    ALTER TABLE speed_hourly_old DROP CONSTRAINT speed_hourly_pkey;
    CREATE TABLE speed_hourly (LIKE speed_hourly_old INCLUDING DEFAULTS,
                               FOREIGN KEY (agent_id) REFERENCES agents (id),
                               PRIMARY KEY (agent_id, client, server, hour))
      PARTITION BY RANGE (hour);
    PERFORM nv_convert_to_partitions('speed_hourly_old', 'speed_hourly', 'month',
                                    'hour');
  END IF;
END $$;

DROP FUNCTION IF EXISTS nv_convert_to_partitions(text, text, text, text);

-- Retention of facts that are gone and of resolved alerts deletes rows
-- (they are few and not time-ordered); these indexes find them.
-- (socket_facts is a view from 0019 on: replayed then, this skips it.)
DO $$
BEGIN
  IF (SELECT relkind FROM pg_class
      WHERE oid = to_regclass('public.socket_facts')) = 'r' THEN
    CREATE INDEX IF NOT EXISTS socket_facts_gone ON socket_facts (last_seen)
      WHERE NOT present;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS file_facts_gone ON file_facts (last_seen) WHERE NOT present;
CREATE INDEX IF NOT EXISTS alerts_resolved_at ON alerts (resolved_at)
  WHERE resolved_at IS NOT NULL;
