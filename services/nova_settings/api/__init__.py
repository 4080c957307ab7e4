"""The HTTP API: routes (``routes/``), their dependencies (``deps``), middleware, error
handlers and the assembly of it all into the app (``main``)."""
