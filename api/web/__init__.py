"""The web app: server-rendered pages (Jinja2 templates) for the people who use CarePath in a browser:
sign-in with cookie sessions, the worklist, and the assets every page stands on."""
