"""mkdocs hook: Sphinx roles in docstrings (``:class:`~serf.Serf` ``) read as code in the site.

The docstrings use Sphinx roles, which mkdocstrings leaves as text (``:class:`` followed by
the name in code). This hook drops the role and, for ``~``-prefixed targets, the module path.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):<code>(~?)([^<]+)</code>")


def _short(match: re.Match[str]) -> str:
    tilde, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """Replace every rendered Sphinx role with its target in code."""
    return _ROLE.sub(_short, html)
