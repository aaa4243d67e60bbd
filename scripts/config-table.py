#!/usr/bin/env python3
"""Rewrites the configuration table of README.md from
crates/mailqueue/src/settings.rs (the one list of settings)."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "crates/mailqueue/src/settings.rs").read_text()
rows = []
pattern = r'(s|secret)\(\s*"([^"]+)",\s*"([^"]+)",\s*(?:(None|Some\("([^"]*)"\)),\s*)?"((?:[^"\\]|\\.)*)"'
for kind, key, env, _default, value, text in re.findall(pattern, src):
    shown = "—" if kind == "secret" or not value else f"`{value}`"
    rows.append(f"| `{env}` | `{key}` | {shown} | {text} |")
readme_path = root / "README.md"
readme = readme_path.read_text()
header = "| Variable | File key | Default | Meaning |\n| --- | --- | --- | --- |\n"
start = readme.index(header)
end = readme.index("\n\n", start)
readme_path.write_text(readme[:start] + header + "\n".join(rows) + readme[end:])
print(f"{len(rows)} settings")
