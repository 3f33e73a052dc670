-- 0007: four-eyes approval of releases and rollouts (docs/operations/approvals.md).
-- channels: when approval_required is 1, a publish to the channel and a rollout above
-- approval_rollout_above percent wait for a second principal's approval; loosening the policy itself
-- waits too. Written only through SetChannelApproval and DecideApproval, never by a settings update.
ALTER TABLE channels ADD COLUMN approval_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN approval_rollout_above INTEGER NOT NULL DEFAULT 100;

-- One requested change: kind 'publish' (version becomes the channel's current release), 'rollout'
-- (rollout_percent) or 'policy' (policy_required, policy_rollout_above). status 'pending', then
-- 'approved' (the change was applied in the same transaction) or 'rejected'. requester_lineage is the
-- requester's token id and those of the tokens that minted it, up to the first (space-separated): a
-- token that minted the requester, or was minted by it, may not approve.
CREATE TABLE approvals (
  id BIGINT NOT NULL PRIMARY KEY,
  app_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  kind TEXT NOT NULL,
  version TEXT,
  rollout_percent INTEGER,
  policy_required INTEGER,
  policy_rollout_above INTEGER,
  requested_by TEXT NOT NULL,
  requester_lineage TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  decided_by TEXT,
  decided_at BIGINT,
  FOREIGN KEY (app_id, channel) REFERENCES channels (app_id, name)
);

CREATE INDEX approvals_by_app ON approvals (app_id, status, id);

-- Release statistics read device events by release and kind (device_events_by_release) and a
-- device's latest events by seq (the primary key); adoption counts active devices by last_seen.
CREATE INDEX devices_by_last_seen ON devices (app_id, last_seen);
