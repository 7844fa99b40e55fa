# A Refract worker image (used by docker-compose.yml). The broker is the official apache/kafka.
# The CSV import's row encoder is Rust (native/): a build stage with rustup compiles the wheel.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends curl build-essential \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY native native
COPY engine engine
COPY schemas schemas
COPY connectors connectors
COPY streams streams
COPY api api
COPY ops ops
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV REFRACT_DATA_DIR=/data REFRACT_WEB_BIND=0.0.0.0
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["refract"]
CMD ["worker"]
