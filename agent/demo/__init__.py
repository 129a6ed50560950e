"""kiln-demo: a whole Kiln fleet in one process, no services needed."""
