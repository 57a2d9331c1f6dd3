"""Chat command handlers. Routers are listed here explicitly (aiogram habit)."""
