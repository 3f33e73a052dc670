-- 0005: the Capgo key id of a release's Capgo form (the first 20 characters of the base64 body of
-- the app's PKCS#1 public key, the plugin's `key_id`), from the release's signed targets metadata.
-- /updates answers key_id_mismatch to a device whose key_id differs instead of offering a bundle it
-- cannot decrypt. NULL for releases published before it was recorded (not checked).
ALTER TABLE releases ADD COLUMN capgo_key_id TEXT;
