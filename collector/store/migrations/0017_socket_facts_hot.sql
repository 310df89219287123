-- Socket facts updated in place (issue 20, README "Storage"). Nearly every
-- socket fact is written twice: inserted when it appears, updated when it
-- goes (present, last_seen). socket_facts_gone (0014) indexed last_seen
-- where NOT present, so that update changed an indexed column and could
-- not be a heap-only (HOT) update: each one added a second entry to the
-- wide primary key index (the whole key, program path included). Retention
-- finds old gone facts by first_seen instead, which no update changes
-- (a fact's first_seen is at or before its last_seen, so
-- "last_seen < horizon" facts are among "first_seen < horizon" ones), and
-- the table leaves room in each page (fillfactor 60) for the update's new
-- row version to stay on its page, which HOT needs. Existing rows are
-- kept as they are (fillfactor applies to pages written from now on).
-- Applied again, this changes nothing.
DROP INDEX IF EXISTS socket_facts_gone;
-- socket_facts is a view from 0019 on (its rows are in socket_fact_rows,
-- which has both): replayed then, this skips it.
DO $$
BEGIN
  IF (SELECT relkind FROM pg_class
      WHERE oid = to_regclass('public.socket_facts')) = 'r' THEN
    CREATE INDEX IF NOT EXISTS socket_facts_first_seen
      ON socket_facts (first_seen);
    ALTER TABLE socket_facts SET (fillfactor = 60);
  END IF;
END $$;
