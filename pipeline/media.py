"""What a query embedding is made from: one part of text, a clip, an image, or text with an image.

``QueryPart`` is a plain value: the search query builds it (``pipeline/search/query.py``,
``Query.parts``), the Twelve Labs boundary embeds it (``TwelveLabsGateway.embed_part``) and the
searcher keys its embedding cache by ``cache_material``. It lives below both so that neither
imports the other. It checks nothing itself: ``Query`` validates what it builds, and the gateway
raises ``BadInputError`` for a part the configured model cannot embed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PART_KINDS = ("text", "clip", "image", "text_image")
"""The kinds of part (also the keys of a query's ``weights``)."""


@dataclass(frozen=True, slots=True)
class QueryPart:
    """One embedded part of a query: text, a clip, an image, or text with an image."""

    kind: str
    text: str | None = None
    url: str | None = None
    start_s: float | None = None
    end_s: float | None = None

    def cache_material(self) -> str:
        """What identifies this part's embedding (kind and content)."""
        return json.dumps([self.kind, self.text, self.url, self.start_s, self.end_s])
