"""What a deployment contains (``config``) and what it costs (``cost``): shared by ``stacks/`` and ``quarry cost``."""
