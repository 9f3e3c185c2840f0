"""The fedsql wire format: ``fedsql.proto`` and its checked-in generated Python stubs."""
