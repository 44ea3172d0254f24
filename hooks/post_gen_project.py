"""Say what to do next, as copier does after a copy."""

import json
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
sys.path.insert(0, ANSWERS["_repo_dir"])

from template_engines.cookiecutter_bridge import finish  # noqa: E402

sys.exit(finish(ANSWERS))
