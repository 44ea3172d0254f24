"""The template's second engine: what lets cookiecutter render copier's template.

``copier.yml`` and ``template/`` are the one source. cookiecutter reads
``cookiecutter.json``, which :mod:`template_engines.cookiecutter_json` writes from
``copier.yml`` (and checks in CI), finds the template through the
``{{cookiecutter.project_slug}}`` link to ``template/``, and renders it with
:class:`template_engines.cookiecutter_bridge.CopierBridge`, a Jinja extension that gives
it copier's answers, filters, ``.jinja`` suffix and optional paths. The hooks in
``hooks/`` run copier's validators before rendering and tidy up after it.

Only cookiecutter and what it installs (Jinja2, PyYAML) are imported here: a plain
``pip install cookiecutter`` renders the kit.
"""
