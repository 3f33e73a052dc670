# One airlock_fuzz() line per target; corpora live in fuzz/corpus/<name>/.
airlock_fuzz(capgo_session_key_fuzz capgo_session_key_fuzz.cc airlock_bundle)
airlock_fuzz(bundle_header_fuzz bundle_header_fuzz.cc airlock_bundle)
airlock_fuzz(manifest_fuzz manifest_fuzz.cc airlock_bundle)
airlock_fuzz(key_file_fuzz key_file_fuzz.cc airlock_crypto)
