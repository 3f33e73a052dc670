# One airlock_fuzz() line per target; corpora live in fuzz/corpus/<name>/.
airlock_fuzz(capgo_session_key_fuzz capgo_session_key_fuzz.cc airlock_bundle)
