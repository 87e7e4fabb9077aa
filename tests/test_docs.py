"""The documentation holds together: every relative link and #anchor in README.md and docs/ points at
a file and a heading that exist, every docs page is reached from the README, the README stays a
front door (at most 250 lines), and the measured tables are the ones their result files render to."""
import os
import re
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from render_tables import documents, render  # noqa: E402  (the docs' pages and tables have one owner)

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")


def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def prose_lines(path):
    """The file's lines outside fenced code blocks."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced:
                yield number, line.rstrip("\n")


def anchors(path):
    seen, found = {}, set()
    for _, line in prose_lines(path):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path):
    for number, line in prose_lines(path):
        for target in LINK.findall(re.sub(r"`[^`]*`", "``", line)):     # not links shown as code
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):     # http:, https:, mailto: are not checked
                yield number, target


def broken_links(paths, root=ROOT):
    """``file:line: target (why)`` for each relative link whose file or heading does not exist (files
    named relative to ``root``)."""
    broken = []
    for path in paths:
        for number, target in links(path):
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = f"{os.path.relpath(path, root)}:{number}: {target}"
            if not os.path.exists(dest):
                broken.append(f"{where} (no such file)")
            elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
                broken.append(f"{where} (no such heading)")
    return broken


def test_every_link_and_anchor_resolves():
    assert broken_links(documents()) == []


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# A page\n\n## Its section\n")
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[fine](other.md#its-section) [also fine](#title) [web](https://example.org)\n"
                    "[gone](missing.md) [no heading](other.md#no-such-section) [here](#nowhere)\n"
                    "```\n[in code](ignored.md)\n```\n")
    assert broken_links([str(page)], root=str(tmp_path)) == [
        f"page.md:4: {target} ({why})"
        for target, why in (("missing.md", "no such file"), ("other.md#no-such-section", "no such heading"),
                            ("#nowhere", "no such heading"))]


def test_headings_get_githubs_anchors():
    assert slug("Why ATS works: analysis tools") == "why-ats-works-analysis-tools"
    assert slug("Teacher analysis: `analyze_teacher.py`") == "teacher-analysis-analyze_teacherpy"
    assert slug("The CPU kernels on Windows") == "the-cpu-kernels-on-windows"


def test_every_docs_page_is_reached_from_the_readme():
    readme = os.path.join(ROOT, "README.md")
    linked = {os.path.normpath(os.path.join(ROOT, t.partition("#")[0])) for _, t in links(readme)}
    assert [p for p in documents()[1:] if os.path.normpath(p) not in linked] == []


def test_the_readme_is_a_front_door():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 250


def test_measured_tables_match_their_result_files():
    for path in documents():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert render(text) == text, f"{path}: run python benchmarks/render_tables.py"
