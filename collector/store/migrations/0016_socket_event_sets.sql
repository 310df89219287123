-- Socket events packed by snapshot (issue 20, README "Storage"): a
-- snapshot's appeared/gone events are one row here, their keys packed
-- (collector/store/history_mapping.h, PackSocketEvents: a string table and
-- nine varints an event), instead of a socket_events row each. On the
-- benchmark's desktop (a never-seen endpoint every 5 s) socket_events took
-- 7.7 MB an agent-day, about 200 bytes an event with its key; packed,
-- about 30 bytes an event plus a row a snapshot that has events.
--
-- socket_events keeps every row it has (nothing is moved or rewritten) and
-- is no longer written: SocketChanges reads both, the old rows until
-- retention (retention.events_days) drops their partitions. Partitioned by
-- UTC day like socket_events, with a DEFAULT partition; the collector makes
-- the day partitions (kDayTables in pg_retention.cc). Applied again, this
-- changes nothing.
CREATE TABLE IF NOT EXISTS socket_event_sets (
  agent_id  bigint NOT NULL REFERENCES agents (id),
  at        timestamptz NOT NULL,   -- the snapshot's time
  seq       bigint NOT NULL,        -- the snapshot's result
  events    integer NOT NULL,       -- how many are packed
  changes   bytea NOT NULL,         -- PackSocketEvents, format 1
  PRIMARY KEY (agent_id, at, seq)
) PARTITION BY RANGE (at);
-- A first snapshot's few hundred events pass the TOAST threshold: lz4 as
-- for payloads (0009).
ALTER TABLE socket_event_sets ALTER COLUMN changes SET COMPRESSION lz4;
CREATE TABLE IF NOT EXISTS nv_part.socket_event_sets_default
  PARTITION OF socket_event_sets DEFAULT;
