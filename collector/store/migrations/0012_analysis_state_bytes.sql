-- Analysis baselines are netvigil.internal messages
-- (proto/netvigil/internal/baselines.proto), stored as bytes. Rows of older
-- versions keep their "k=v" text in `value` (bytes NULL) until the
-- collector converts them on its next start.
ALTER TABLE analysis_state ADD COLUMN bytes bytea;
