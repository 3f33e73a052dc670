# One airlock_fuzz() line per target; corpora live in fuzz/corpus/<name>/.
