"""Business rules as data (declarations), applied by one engine in services."""
