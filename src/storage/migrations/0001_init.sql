-- 0001: initial schema. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Types are limited to TEXT, BIGINT and INTEGER (booleans are INTEGER 0/1); every primary-key column is
-- declared NOT NULL so both databases report the same nullability; keys are natural or supplied by the app.
CREATE TABLE apps (
  app_id TEXT NOT NULL PRIMARY KEY,
  display_name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE releases (
  app_id TEXT NOT NULL REFERENCES apps (app_id),
  version TEXT NOT NULL,
  target_name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  length BIGINT NOT NULL,
  encryption TEXT NOT NULL,
  capgo_session_key TEXT,
  capgo_checksum TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, version)
);

CREATE TABLE channels (
  app_id TEXT NOT NULL REFERENCES apps (app_id),
  name TEXT NOT NULL,
  is_default INTEGER NOT NULL,
  allow_self_assign INTEGER NOT NULL,
  ios INTEGER NOT NULL,
  android INTEGER NOT NULL,
  electron INTEGER NOT NULL,
  min_native_version TEXT,
  rollout_percent INTEGER NOT NULL,
  paused INTEGER NOT NULL,
  current_version TEXT,
  PRIMARY KEY (app_id, name),
  FOREIGN KEY (app_id, current_version) REFERENCES releases (app_id, version)
);

-- At most one default channel per app, even against two concurrent writers.
CREATE UNIQUE INDEX channels_one_default ON channels (app_id) WHERE is_default = 1;

CREATE TABLE devices (
  app_id TEXT NOT NULL REFERENCES apps (app_id),
  device_id TEXT NOT NULL,
  public_key TEXT NOT NULL,
  platform TEXT NOT NULL,
  channel_override TEXT,
  last_seen BIGINT NOT NULL,
  PRIMARY KEY (app_id, device_id),
  FOREIGN KEY (app_id, channel_override) REFERENCES channels (app_id, name)
);

-- Reports are idempotent: the device numbers its events, and a retried batch inserts nothing new.
CREATE TABLE device_events (
  app_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  version TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  detail TEXT NOT NULL,
  occurred_at BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, device_id, seq),
  FOREIGN KEY (app_id, device_id) REFERENCES devices (app_id, device_id)
);

CREATE INDEX device_events_by_release ON device_events (app_id, version, kind);
