"""Use cases that span repositories (and S3): what a handler calls in one line."""
