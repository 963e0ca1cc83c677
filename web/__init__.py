"""The web app: pages (Jinja2) and the JSON API; each route parses, calls one use case, renders.
May import documents, app, infra and everything below them."""
