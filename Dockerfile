# 面试退出助手 image. Build: docker build -t interview-exit-bot .  (checked without Docker: deploy/build-image.sh)
# Pinned base: an exact Python patch release on an exact Debian release (bump deliberately).
FROM python:3.11.11-slim-bookworm

# fonts-noto-cjk: the charts' Chinese title and reason names (found by file, regular weight);
# tzdata: TZ and BOT_TIMEZONE resolve to real zones.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk tzdata \
    && rm -rf /var/lib/apt/lists/*

# MPLCONFIGDIR: matplotlib writes its font cache there, not into a read-only or missing home.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    BOT_HOST=0.0.0.0 BOT_PORT=8080 BOT_TIMEZONE=Asia/Shanghai \
    BOT_DATABASE_URL=sqlite+aiosqlite:////data/bot.db \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY templates ./templates
COPY deploy/entrypoint.sh /usr/local/bin/bot-entrypoint
# Installed as a package (not editable); the source tree is then removed: `python -m bot` in the
# working directory /app would otherwise import it instead of what pip installed.
RUN pip install --no-cache-dir . \
    && rm -rf /app/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent bot \
    && mkdir -p /data && chown bot /data \
    && chmod 0755 /usr/local/bin/bot-entrypoint

USER bot
VOLUME ["/data"]
EXPOSE 8080
# Liveness on whatever BOT_PORT is at run time (the proxy in deploy/ uses /readyz for readiness).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BOT_PORT', '8080'), timeout=4).status == 200 else 1)"
# The entrypoint sets TZ from BOT_TIMEZONE (unless TZ is given) and runs the command.
ENTRYPOINT ["bot-entrypoint"]
CMD ["python", "-m", "bot", "serve"]
