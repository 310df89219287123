-- Whether a process's executable had been unlinked while it held a file
-- under a watched folder, so `netvigil files HOST` can mark it as the
-- agent's own table does. Rows written before this know nothing: false.
ALTER TABLE file_facts ADD COLUMN exe_deleted boolean NOT NULL DEFAULT false;
