"""What the rest of the package stands on: configuration, the database, token security,
logging."""
