"""Storage for the broker: one interface, SQLite and PostgreSQL behind it."""
