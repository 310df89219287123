-- Hourly aggregates keep the median and the spread (population standard
-- deviation) of the runs' average round trip and of the tests' received
-- bit rate, so history past retention.raw_days says what a typical run
-- was and how much runs varied, not only the mean and the extremes. Hours
-- folded before this migration have NULL here: the Query service reads
-- their mean as the median and 0 as the spread.
ALTER TABLE path_hourly
  ADD COLUMN IF NOT EXISTS median_ms double precision,
  ADD COLUMN IF NOT EXISTS stddev_ms double precision;
ALTER TABLE speed_hourly
  ADD COLUMN IF NOT EXISTS median_bps double precision,
  ADD COLUMN IF NOT EXISTS stddev_bps double precision;
