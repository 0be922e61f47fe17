"""Jobs: the SQLite ledger that is the truth for every job, and the dispatchers that run them."""
