FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    BOT_HOST=0.0.0.0 BOT_PORT=8080 \
    BOT_DATABASE_URL=sqlite+aiosqlite:////data/bot.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --system --home /app bot && mkdir -p /data && chown bot /data

USER bot
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "bot", "serve"]
