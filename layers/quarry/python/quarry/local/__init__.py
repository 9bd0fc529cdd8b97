"""The local runtime: the Lambda handlers behind an ASGI app, an in-process bus and workflow."""
