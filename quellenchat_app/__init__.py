"""The Quellenchat web app: Gradio tabs, HTTP routes and lifecycle over one wired service."""
