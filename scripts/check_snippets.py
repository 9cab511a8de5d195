#!/usr/bin/env python3
"""The README's Swift snippets are compiled code: each ```swift block after a `<!-- snippet: NAME -->`
line must equal the part of Examples/*.swift between `// snippet: NAME` and `// end snippet` (dedented).
`make lint` runs this; it prints what differs and exits 1. With --write it copies the snippets into the
README instead."""
import pathlib
import re
import sys
import textwrap

root = pathlib.Path(__file__).resolve().parent.parent
snippets = {}
for path in sorted((root / "Examples").glob("*.swift")):
    for match in re.finditer(r"^[ \t]*// snippet: (.+?)\n(.*?)^[ \t]*// end snippet", path.read_text(), re.S | re.M):
        snippets[match.group(1).strip()] = textwrap.dedent(match.group(2)).strip("\n")

readme = (root / "README.md").read_text()
if "--write" in sys.argv[1:]:

    def replace(match):
        name = match.group(1)
        return f"<!-- snippet: {name} -->\n```swift\n{snippets.get(name, match.group(2))}\n```"

    readme = re.sub(r"<!-- snippet: (.+?) -->\n```swift\n(.*?)\n```", replace, readme, flags=re.S)
    (root / "README.md").write_text(readme)
blocks = re.findall(r"<!-- snippet: (.+?) -->\n```swift\n(.*?)\n```", readme, re.S)
failures = []
for name, block in blocks:
    if name not in snippets:
        failures.append(f"README.md: snippet {name!r} is not marked in Examples/*.swift")
    elif snippets[name] != block:
        failures.append(f"README.md: snippet {name!r} differs from Examples/:\n{snippets[name]}")
unmarked = len(re.findall(r"```swift\n", readme)) - len(blocks)
if unmarked:
    failures.append(f"README.md: {unmarked} swift block(s) without a <!-- snippet: NAME --> line")
if not blocks:
    failures.append("README.md: no snippets found")
for failure in failures:
    print(failure)
sys.exit(1 if failures else 0)
