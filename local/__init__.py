"""The local tooling: the whole service on one machine without AWS (`make run`), the stand-ins the
tests use (gateway, S3, tokens, database) and the generators of committed files (OpenAPI, sample
events). docs/ARCHITECTURE.md has the map."""
