-- 0008: a release's Capgo manifest (partial update): a JSON array of
-- {"file_name", "file_hash", "sha256"}, one entry per file of the release, each file encrypted on
-- its own and stored as a blob named by sha256; file_name ends in ".br" for a file compressed with
-- brotli before encryption. NULL when the release was published without one (the plugin then
-- downloads the whole zip). Every entry's blob is a target of the release's signed targets metadata.
ALTER TABLE releases ADD COLUMN capgo_manifest TEXT;
