"""The release manifest: what runs in an environment, from which commit, as which image digests. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.core.imageref import components_with_digests


def manifest_document(
    *,
    service: str,
    env: str,
    version: str,
    commit: str | None,
    released_at: datetime,
    released_by: str,
    release_id: int,
    components: Mapping[str, str],
) -> dict[str, Any]:
    """The manifest of one live release, as `GET /api/v1/manifest` answers and the manifest file holds."""
    return {
        "service": service,
        "env": env,
        "version": version,
        "commit": commit,
        "released_at": released_at.isoformat(),
        "released_by": released_by,
        "release_id": release_id,
        "components": components_with_digests(components),
    }
