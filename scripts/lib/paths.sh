# Sourced by the scripts: where the controller keeps its caches and tools, decided once.
# An empty NOVA_CACHE_DIR is a cold start: everything below is fetched or built again.
NOVA_CACHE_DIR=${NOVA_CACHE_DIR:-/var/cache/nova-dev}
# uv's own cache too, so that an empty NOVA_CACHE_DIR really is cold.
export UV_CACHE_DIR=${UV_CACHE_DIR:-$NOVA_CACHE_DIR/uv-cache}
UV_VERSION=0.13.9
# A venv of the machine's python3 with pip and uv, made by scripts/bootstrap. Scripts call its
# tools by path: the project's .venv (uv-made, no pip) may be first on PATH.
NOVA_TOOLS=$NOVA_CACHE_DIR/uv-$UV_VERSION
