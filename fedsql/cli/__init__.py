"""The ``fedsql`` command line: typer app, one module per command group, printing with rich."""
