"""Jinja2 templates for everything the bot says to people (Chinese)."""
