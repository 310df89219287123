-- The Overview's "latest of each" reads walk an index instead of sorting a
-- host's whole history (30 days of one-minute path runs is 216,000 rows a
-- host). Path runs need nothing new: path_runs_agent_target_at, read
-- backwards, gives a target's latest run. The speed matrix skips external
-- targets, so it gets an index of the LAN pairs alone.
CREATE INDEX speed_results_lan_pair_at ON speed_results (client, server, started_at)
  WHERE NOT external;
