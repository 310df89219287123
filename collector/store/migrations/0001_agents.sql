-- Agents: one row per agent name, kept for good. Online state is derived:
-- a session holds the agent's stream and its last heartbeat is recent.
CREATE TABLE agents (
  id                bigserial PRIMARY KEY,
  name              text NOT NULL UNIQUE,
  hostname          text NOT NULL DEFAULT '',
  addresses         text[] NOT NULL DEFAULT '{}',
  version           text NOT NULL DEFAULT '',
  boot_id           text NOT NULL DEFAULT '',
  first_seen        timestamptz NOT NULL,
  last_seen         timestamptz NOT NULL,
  connected_since   timestamptz,
  -- The collector session that holds the stream, NULL when none does.
  session_id        text,
  -- Every result with seq <= this is committed; the agent resumes after it.
  acked_through_seq bigint NOT NULL DEFAULT 0
);
