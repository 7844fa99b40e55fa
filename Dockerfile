# A Refract worker image (used by docker-compose.yml). The broker is the official apache/kafka.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY schemas schemas
COPY connectors connectors
COPY streams streams
COPY api api
COPY ops ops
RUN pip install --no-cache-dir .
ENV REFRACT_DATA_DIR=/data REFRACT_WEB_BIND=0.0.0.0
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["refract"]
CMD ["worker"]
