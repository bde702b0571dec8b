#!/usr/bin/env bash
# Regenerates the config reference table in README.md from the schema (qa-train config --keys --markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/qa-train}
table=$("$bin" config --keys --markdown)
python3 - "$table" <<'PY'
import re, sys
readme = open("README.md").read()
begin = readme.index("<!-- CONFIG-TABLE:BEGIN")
begin = readme.index("\n", begin) + 1
end = readme.index("<!-- CONFIG-TABLE:END -->")
open("README.md", "w").write(readme[:begin] + sys.argv[1] + "\n" + readme[end:])
PY
