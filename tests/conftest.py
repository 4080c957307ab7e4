"""The test suite's top-level conftest: how the suites are laid out and import each other.

* One folder per thing under test; each folder's ``conftest.py`` holds that suite's fixtures.
  ``tests/standins/`` are the loopback stand-ins for services the test machines cannot reach
  (Hugging Face, Google, LangSmith) and for our own upstreams (one base:
  ``tests/standins/base.py``); ``tests/host/`` the suites against a real provisioned systemd
  host, selected with ``-m host`` (see its ``conftest.py`` for what it owns and what the
  Molecule scenario owns).
* Imports: ``pythonpath`` in ``pyproject.toml`` puts ``services/`` and the repository root on
  ``sys.path``, so tests import the services' packages by name (``import nova_settings``) and
  shared test code as the ``tests`` package (``from tests.standins.gemini_api import
  GeminiStandin``); inside a folder, relative imports (``from .conftest import ...``). No test
  changes ``sys.path``. Every folder is a package (``__init__.py``), so a test folder that
  mirrors a service's name never shadows the service's package.
"""
