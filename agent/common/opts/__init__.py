"""Option definitions, one module per area; ``agent.common.config`` gathers them."""
