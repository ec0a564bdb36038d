"""PostgreSQL: tables, repositories, the unit of work."""
