-- 0004: devices prove who they are (docs/api/server-api.md, "Device authentication").
-- apps: how new devices enroll: 'token' (the enrollment token), 'approve' (token, then an operator
-- approves), 'preauth' (only signing keys registered beforehand, device_preauth).
ALTER TABLE apps ADD COLUMN enroll_policy TEXT NOT NULL DEFAULT 'token';

-- devices: the Ed25519 public key (64 hex) that signs the device's requests (NULL for rows enrolled
-- before this migration: such a device must enroll again), and its status: 'active', 'pending'
-- (waiting for approval) or 'revoked'.
ALTER TABLE devices ADD COLUMN signing_key TEXT;
ALTER TABLE devices ADD COLUMN status TEXT NOT NULL DEFAULT 'active';

-- Signing keys allowed to enroll under the 'preauth' policy (a factory list). device_id is NULL until a
-- device enrolls with the key, then the id it enrolled as (the key enrolls that id only).
CREATE TABLE device_preauth (
  app_id TEXT NOT NULL REFERENCES apps (app_id),
  signing_key TEXT NOT NULL,
  device_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, signing_key)
);

-- Device-mode content keys, wrapped once per device and release bundle (sha256) to the device's X25519
-- key (public_key: the key it was wrapped to; a re-keyed device gets a new wrap).
CREATE TABLE device_wrapped_keys (
  app_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  public_key TEXT NOT NULL,
  wrapped_key TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, device_id, sha256),
  FOREIGN KEY (app_id, device_id) REFERENCES devices (app_id, device_id)
);

-- The per-device report quota counts a device's events received in the last hour.
CREATE INDEX device_events_by_device_time ON device_events (app_id, device_id, received_at);
