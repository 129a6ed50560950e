"""Controllers: one module per resource, each with ``register(router)``."""
