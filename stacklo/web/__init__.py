"""HTTP and WebSocket edges: the GraphQL endpoint, request guards, webhooks and operations routes.

``stacklo/app.py`` only assembles these; the rules they enforce live in the modules here.
"""
