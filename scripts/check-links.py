#!/usr/bin/env python3
"""Checks every relative link and anchor of the project's Markdown files (CI; offline).

  scripts/check-links.py [ROOT]     ROOT defaults to the repository; exit 1 and one line per broken link

Checked: README.md, every *.md under docs/, and the other Markdown files at the top level
(CHANGELOG.md, RELIABILITY.md, BENCHMARKS.md, ...). A link `[text](target)` or a reference
definition `[label]: target` outside code must name a file or directory that exists (relative to the
linking file), and an anchor (`#part`, `file.md#part`) must be a heading of that file, in GitHub's
spelling (lower case, punctuation dropped, spaces as dashes, `-1`, `-2` for repeated headings) or an
explicit `<a id="...">`/`<a name="...">`. Links with a scheme (https:, mailto:) are not fetched.
"""
import glob
import os
import re
import sys
from urllib.parse import unquote

FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") -- text may hold one level of brackets (an image inside a link).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def slug(heading):
    """GitHub's anchor of a heading text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def prose_lines(text):
    """(line number, line, line with inline code blanked out) of the lines outside fenced code."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


def anchors(path, cache={}):
    """Every anchor a Markdown file defines."""
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        seen, found = {}, set()
        for _, line, _ in prose_lines(text):
            found.update(HTML_ANCHOR.findall(line))
            match = HEADING.match(line)
            if match:
                base = slug(match.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def links(text):
    for number, _, line in prose_lines(text):
        for target in INLINE_LINK.findall(line):
            yield number, target
        match = REFERENCE_DEF.match(line)
        if match:
            yield number, match.group(1)


def check_file(root, path):
    problems = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for number, target in links(text):
        if not target or SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part)
        where = f"{os.path.relpath(path, root)}:{number}: {target}"
        if file_part.startswith("/"):
            problems.append(f"{where}: absolute path (use a path relative to the file)")
            continue
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(resolved):
            problems.append(f"{where}: no such file or directory")
            continue
        if os.path.relpath(resolved, root).startswith(".."):
            problems.append(f"{where}: points outside the repository")
            continue
        if anchor:
            if not resolved.endswith(".md") or os.path.isdir(resolved):
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif unquote(anchor) not in anchors(resolved):
                problems.append(f"{where}: no heading with anchor #{anchor} in {os.path.relpath(resolved, root)}")
    return problems


def markdown_files(root):
    files = set(glob.glob(os.path.join(root, "*.md")))
    files.update(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return sorted(files)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(__file__)))
    files = markdown_files(root)
    if not any(os.path.basename(f) == "README.md" for f in files):
        sys.exit(f"check-links: no README.md in {root}")
    problems = [p for f in files for p in check_file(root, f)]
    for problem in problems:
        print(problem)
    checked = sum(1 for f in files for _ in links(open(f, encoding="utf-8").read()))
    if problems:
        print(f"check-links: {len(problems)} broken link(s) in {len(files)} Markdown files", file=sys.stderr)
        return 1
    print(f"check-links: {checked} links in {len(files)} Markdown files resolve", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
