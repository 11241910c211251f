"""MS8 Learning Analytics: the shared layer (config, database and RLS context, repositories,
domain rules, HTTP glue). Functions under functions/ import from here and stay thin."""
