"""The web app: server-rendered pages for care teams (sign-in, worklist), cookie sessions."""
