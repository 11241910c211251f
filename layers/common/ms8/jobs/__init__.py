"""Scheduled maintenance jobs (docs/ARCHITECTURE.md, scheduled jobs): comparison refresh, partitions, rollups, stale
analytics. Each runs as the owner role in one maintenance transaction guarded by an advisory
lock; `runner` holds what they share, the Lambda handlers under functions/ only wire them up."""
