# One airlock_fuzz() line per target; corpora live in fuzz/corpus/<name>/.
airlock_fuzz(capgo_session_key_fuzz capgo_session_key_fuzz.cc airlock_bundle)
airlock_fuzz(bundle_header_fuzz bundle_header_fuzz.cc airlock_bundle)
airlock_fuzz(manifest_fuzz manifest_fuzz.cc airlock_bundle)
airlock_fuzz(key_file_fuzz key_file_fuzz.cc airlock_crypto)
airlock_fuzz(metadata_root_fuzz metadata_root_fuzz.cc airlock_metadata)
airlock_fuzz(metadata_targets_fuzz metadata_targets_fuzz.cc airlock_metadata)
airlock_fuzz(metadata_snapshot_fuzz metadata_snapshot_fuzz.cc airlock_metadata)
airlock_fuzz(metadata_timestamp_fuzz metadata_timestamp_fuzz.cc airlock_metadata)
