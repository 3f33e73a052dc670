-- 0002: what the admin and device API need. Portable SQL (ALTER TABLE ... ADD COLUMN on both databases;
-- added columns go last, in this order, on both).
-- apps: the SHA-256 (hex) of the app's enrollment token (the token itself is shown once and never
-- stored) and the developer's public key for `app` encryption mode (SPKI PEM).
ALTER TABLE apps ADD COLUMN enroll_token_sha256 TEXT;
ALTER TABLE apps ADD COLUMN app_key TEXT;

-- releases: target_name/sha256/length stay the TUF target blob; `format` is 'alb' (sealed bundle) or
-- 'zip'; the capgo_* columns describe the Capgo-encrypted zip published beside it (all NULL without one).
ALTER TABLE releases ADD COLUMN format TEXT;
ALTER TABLE releases ADD COLUMN capgo_target TEXT;
ALTER TABLE releases ADD COLUMN capgo_sha256 TEXT;
ALTER TABLE releases ADD COLUMN capgo_length BIGINT;

-- channels: 1 while current_version was set by a rollback the signed targets allow (devices above it may
-- be offered it), back to 0 on the next publish.
ALTER TABLE channels ADD COLUMN rolled_back INTEGER NOT NULL DEFAULT 0;
