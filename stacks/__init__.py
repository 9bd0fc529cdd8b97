"""CDK stacks for Quarry: one module per concern, composed by ``stacks.quarry_stack.QuarryStack``."""

__all__: list[str] = []
