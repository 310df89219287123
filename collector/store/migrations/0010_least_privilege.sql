-- Least privilege (issue 15): the dashboard role (`netvigil_ro`, or the
-- name `db init --readonly-role` gave) reads the history, never a secret.
-- `db init` grants it SELECT on every table, present and future (ALTER
-- DEFAULT PRIVILEGES), so the iperf3 key pair and secret (migration 0008)
-- became readable to it. The secret tables are taken back from every role
-- but their owner (and superusers), whoever was granted them:
--   iperf_auth         the mesh's RSA private key and the HMAC secret every
--                      agent's iperf3 password derives from
--   enrollment_tokens  pending enrollments (token hashes, agent names)
-- `db init` revokes the same list after its grants (collector/db_admin.cc,
-- kSecretTables). A later migration that adds a secret table must revoke it
-- the same way, in that migration, and join both lists:
-- tests/integration/least_privilege_test.py fails for a table the dashboard
-- role can read that is not on its list of history tables.
REVOKE ALL ON TABLE iperf_auth, enrollment_tokens FROM PUBLIC;
DO $$
DECLARE
  r text;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole::text
    FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
    WHERE c.oid IN ('iperf_auth'::regclass, 'enrollment_tokens'::regclass)
      AND a.grantee <> 0 AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('REVOKE ALL ON TABLE iperf_auth, enrollment_tokens FROM %s',
                   r);
  END LOOP;
END $$;
