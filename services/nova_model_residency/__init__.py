"""nova-model-residency: several local models behind one llama-server address.

One child llama-server per model (started through nova-gpu-sizing where the host has a GPU),
loaded when a request names it, stopped when memory is short (least recently used first,
pinned and busy models never), every decision in the journal. See ``residency.py`` for the
policy and ``app.py`` for the HTTP side.
"""
