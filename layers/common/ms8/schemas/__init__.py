"""pydantic models of the API: what comes in is validated here, what goes out is shaped here."""
