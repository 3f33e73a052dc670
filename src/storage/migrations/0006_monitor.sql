-- 0006: the monitor (src/monitor, docs/operations/alerts.md): one event stream, the rules' cursor,
-- alerts with their actions and notifications, and the rules' settings.

-- Every event the rules read: key operations (from the key usage log), admin API requests (failed
-- authentication and refusals included), release and rollout changes, device reports, operator
-- declarations. id is assigned by the writer as MAX(id) + 1 inside a transaction that holds the
-- monitor's write lock (PostgreSQL: an advisory transaction lock; SQLite: BEGIN IMMEDIATE), so ids
-- become visible in order and a reader that has seen id N never later finds a smaller new one.
-- (source, source_ref) names the event at its origin ("<log id>:<seq>" of the usage log, "<app>/<device>/<seq>"
-- of a device report): a second airlockd ingesting the same origin stores nothing twice.
CREATE TABLE monitor_events (
  id BIGINT NOT NULL PRIMARY KEY,
  source TEXT NOT NULL,
  source_ref TEXT NOT NULL,
  time BIGINT NOT NULL,
  recorded_at BIGINT NOT NULL,
  app_id TEXT NOT NULL,
  key_name TEXT NOT NULL,
  actor TEXT NOT NULL,
  address TEXT NOT NULL,
  operation TEXT NOT NULL,
  result TEXT NOT NULL,
  reason TEXT NOT NULL,
  device_id TEXT NOT NULL,
  version TEXT NOT NULL,
  detail TEXT NOT NULL,
  UNIQUE (source, source_ref)
);
CREATE INDEX monitor_events_by_key_time ON monitor_events (key_name, time);
CREATE INDEX monitor_events_by_app_time ON monitor_events (app_id, time);

-- High-water marks: 'rules' (the last event id the rules have evaluated) and 'usage:<log id>' (the
-- last usage-log seq ingested). Only ever moved forward.
CREATE TABLE monitor_cursors (
  name TEXT NOT NULL PRIMARY KEY,
  position BIGINT NOT NULL
);

-- One row per alert. (rule, subject, window_start) is unique: whichever airlockd inserts it first
-- takes the action; the others' inserts change nothing. action_state: 'none' (low: record and
-- notify), 'pending' (to be taken; retried after a crash), 'done', 'failed'. notify_state:
-- 'pending', 'sent', 'failed' (given up), 'none' (no webhook configured).
CREATE TABLE monitor_alerts (
  id BIGINT NOT NULL PRIMARY KEY,
  rule TEXT NOT NULL,
  level TEXT NOT NULL,
  subject TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  app_id TEXT NOT NULL,
  key_name TEXT NOT NULL,
  version TEXT NOT NULL,
  summary TEXT NOT NULL,
  event_id BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  investigation INTEGER NOT NULL,
  action TEXT NOT NULL,
  action_state TEXT NOT NULL,
  action_result TEXT NOT NULL,
  notify_state TEXT NOT NULL,
  notify_attempts BIGINT NOT NULL,
  notify_next_at BIGINT NOT NULL,
  acked_by TEXT,
  acked_at BIGINT,
  resolved_by TEXT,
  resolved_at BIGINT,
  note TEXT,
  UNIQUE (rule, subject, window_start)
);
CREATE INDEX monitor_alerts_by_status ON monitor_alerts (status, id);

-- The rules' settings as set by `airlock alert rules set` (JSON object per rule; absent: defaults).
CREATE TABLE monitor_rules (
  rule TEXT NOT NULL PRIMARY KEY,
  settings TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by TEXT NOT NULL
);

-- The scheduled checks' reports (docs/operations/alerts.md, "Scheduled checks"): one per period
-- ('daily', 'weekly', 'monthly', 'quarterly') and window start, whichever airlockd makes it first.
-- A weekly review is signed off by an auditor (signed_off_by/at; also a record in the audit chain).
CREATE TABLE monitor_reports (
  id BIGINT NOT NULL PRIMARY KEY,
  period TEXT NOT NULL,
  period_start BIGINT NOT NULL,
  period_end BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  report TEXT NOT NULL,
  signed_off_by TEXT,
  signed_off_at BIGINT,
  note TEXT,
  UNIQUE (period, period_start)
);
