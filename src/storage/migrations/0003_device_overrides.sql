-- 0003: Store::ListChannelOverrides (the channel cache reloads an app's overridden devices with its
-- channels, every few seconds). Without an index that query reads every enrolled device of the app (about
-- 50 ms for 500,000 devices on SQLite, under the store's lock); this partial index holds only the devices
-- that have an override, so the reload costs what the overrides cost.
CREATE INDEX devices_with_override ON devices (app_id, device_id) WHERE channel_override IS NOT NULL;
