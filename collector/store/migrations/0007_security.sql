-- Enrollment and certificates (issue 9). Tokens are kept only as their
-- SHA-256: the database never holds a token that could still be used.
CREATE TABLE enrollment_tokens (
  token_sha256  text PRIMARY KEY,       -- lower-case hex
  agent_name    text NOT NULL,
  replace       boolean NOT NULL,       -- may take over an existing name
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  used_at       timestamptz             -- NULL until spent (single use)
);
CREATE INDEX enrollment_tokens_agent ON enrollment_tokens (agent_name);

-- Every certificate the collector's CA signed for an agent or an admin. A
-- client certificate counts only while its row is here and not revoked.
CREATE TABLE certificates (
  serial       text PRIMARY KEY,        -- lower-case hex
  name         text NOT NULL,           -- the subject's common name
  role         text NOT NULL CHECK (role IN ('agent', 'admin')),
  sha256       text NOT NULL,
  not_before   timestamptz NOT NULL,
  not_after    timestamptz NOT NULL,
  issued_at    timestamptz NOT NULL,
  revoked_at   timestamptz
);
CREATE INDEX certificates_name ON certificates (role, name);

-- Revocations in the order they were made; every collector polls it to cut
-- the revoked agents' open streams.
CREATE TABLE revocations (
  id          bigserial PRIMARY KEY,
  role        text NOT NULL,
  name        text NOT NULL,
  revoked_at  timestamptz NOT NULL
);
