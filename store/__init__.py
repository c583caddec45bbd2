"""The system of record: SQLAlchemy engine and sessions, models, migrations, and query functions."""
