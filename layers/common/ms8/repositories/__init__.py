"""SQL lives here: one module per aggregate, each function one statement where it can be."""
