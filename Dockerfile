# docexchange: runs `docexchange serve` as a non-root user.
# Mount your configuration and keys:  -v $PWD/config:/srv/docexchange/config:ro -v $PWD/keys:/srv/docexchange/keys
# and a volume for node data:         -v docexchange-data:/srv/docexchange/data
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/docexchange
COPY pyproject.toml README.md ./
COPY docexchange ./docexchange
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /srv/docexchange --create-home docexchange \
 && mkdir -p /srv/docexchange/config /srv/docexchange/keys /srv/docexchange/data \
 && chown -R docexchange:docexchange /srv/docexchange

USER docexchange
WORKDIR /srv/docexchange
VOLUME ["/srv/docexchange/data"]
# trust services (8480) and the axis nodes of the sample directory (8441-8443)
EXPOSE 8480 8441 8442 8443
ENTRYPOINT ["docexchange", "--config", "/srv/docexchange/config/docexchange.toml"]
CMD ["serve"]
