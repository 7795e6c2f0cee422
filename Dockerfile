# commentmod: the same install and start commands as the README's quick start.
# No Docker engine runs on the project's machines, so this file deliberately does
# nothing the README and the tests do not also do: `pip install .` then
# `commentmod serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COMMENTMOD_MODEL_DIR=/data/models \
    COMMENTMOD_DATA_DIR=/data/var

RUN useradd --create-home --uid 10001 commentmod \
    && mkdir -p /data/models /data/var && chown -R commentmod /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN pip install --no-cache-dir .

USER commentmod
VOLUME ["/data"]
EXPOSE 8000
# Mount a trained model at /data/models, or let the first start train the
# bootstrap model from the shipped YouTube Spam Collection.
CMD ["commentmod", "serve", "--host", "0.0.0.0", "--port", "8000"]
