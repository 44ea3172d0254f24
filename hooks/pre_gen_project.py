"""Refuse, before anything is rendered, the answers copier would refuse, with its messages."""

import json
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
sys.path.insert(0, ANSWERS["_repo_dir"])

from template_engines.cookiecutter_bridge import check_answers  # noqa: E402

sys.exit(check_answers(ANSWERS))
