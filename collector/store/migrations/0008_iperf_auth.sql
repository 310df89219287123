-- iperf3's RSA authentication for the agents' iperf3 servers (issue 9): one
-- key pair for the whole mesh and the secret every agent's iperf3 password
-- is derived from (common/iperf_credentials.h). One row; the first collector
-- to start writes it, and every collector sharing the database issues the
-- same credentials from it.
CREATE TABLE iperf_auth (
  id            smallint PRIMARY KEY CHECK (id = 1),
  rsa_private   text NOT NULL,   -- PKCS#8 PEM
  rsa_public    text NOT NULL,   -- SubjectPublicKeyInfo PEM
  user_secret   text NOT NULL,   -- 32 random bytes, lower-case hex
  created_at    timestamptz NOT NULL DEFAULT now()
);
