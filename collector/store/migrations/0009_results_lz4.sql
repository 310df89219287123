-- Result payloads are protobuf bytes of a few to a few dozen KiB; lz4
-- compresses them several times faster than the default pglz, which on a
-- small home server is the difference between keeping up with ingest and
-- not. Existing rows keep their compression until rewritten.
ALTER TABLE results ALTER COLUMN payload SET COMPRESSION lz4;
