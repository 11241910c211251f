"""Domain rules as pure functions: no database, no clock (callers pass `now`), no I/O."""
