"""Remove the folders the answers leave out, and say what to do next, as copier does."""

import json
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
sys.path.insert(0, ANSWERS["_repo_dir"])

from template_engines.cookiecutter_bridge import finish  # noqa: E402

sys.exit(finish(ANSWERS, Path.cwd()))
