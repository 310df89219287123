-- Placeholder in branch h-retention only: migrations are numbered without
-- gaps and 0013 belongs to h-notify (notify_outbox). Merging h-notify
-- replaces this file with the real one (same name, on purpose: git reports
-- the clash instead of keeping two 0013s).
SELECT 1;
