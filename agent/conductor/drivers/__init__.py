"""Driver interfaces, hardware types and their loading through stevedore."""
