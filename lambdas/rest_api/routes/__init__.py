"""One Powertools Router per resource; each route parses, calls one use case and shapes the response."""
