"""Container image references, parsed the way Docker's distribution/reference does.

Pure: no I/O. The grammar (https://github.com/distribution/reference) is::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]         host: DNS name, IPv4, or [IPv6]
    path-comp. := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex

Docker Hub defaults: a first component is a registry only if it contains ``.`` or ``:`` or is
``localhost``; otherwise the registry is ``docker.io``, and a single-component Docker Hub name
lives under ``library/`` (``nginx`` → ``docker.io/library/nginx``). When neither tag nor digest is
given the tag is ``latest`` (what ``docker pull`` would fetch); when a digest is given without a
tag, no tag is invented.

The only pinned form accepted is ``sha256:`` followed by 64 lowercase hex digits: a release is
hermetic only when the exact bytes are named, and every registry speaks sha256.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_REGISTRY",
    "ImageRef",
    "ImageRefError",
    "components_with_digests",
    "parse_image_ref",
]

DEFAULT_REGISTRY = "docker.io"
_LEGACY_HUB = "index.docker.io"
_NAME_MAX = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]{{1,5}})?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")


class ImageRefError(ValueError):
    """An image reference that does not parse; the message names the reference and the problem."""

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"{text!r}: {problem}")
        self.text = text
        self.problem = problem


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised image reference."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """True when the reference names exact content by digest (a tag alongside is allowed)."""
        return self.digest is not None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        """Canonical, fully qualified form, e.g. ``docker.io/library/nginx:latest``."""
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """The short form people type: Docker Hub's ``docker.io/`` and ``library/`` dropped."""
        out = str(self)
        if self.registry == DEFAULT_REGISTRY:
            out = out.removeprefix(f"{DEFAULT_REGISTRY}/").removeprefix("library/")
        return out


def _split_digest(text: str, rest: str) -> tuple[str, str | None]:
    if "@" not in rest:
        return rest, None
    name, _, digest = rest.partition("@")
    if not digest:
        raise ImageRefError(text, "empty digest after '@'")
    algorithm, colon, hexpart = digest.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm) or not hexpart:
        raise ImageRefError(text, f"digest {digest!r} is not of the form sha256:<64 hex digits>")
    if algorithm != "sha256":
        raise ImageRefError(text, f"digest {digest!r}: only sha256 digests are accepted")
    if not _SHA256.fullmatch(digest):
        raise ImageRefError(text, f"digest {digest!r} must be sha256: followed by 64 lowercase hex digits")
    return name, digest


def _split_tag(text: str, name: str) -> tuple[str, str | None]:
    colon = name.rfind(":")
    # A colon before the last slash is a registry port ("host:5000/app"), not a tag.
    if colon == -1 or colon < name.rfind("/"):
        return name, None
    tag = name[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ImageRefError(
            text,
            f"invalid tag {tag!r} (letters, digits, '_', '.', '-'; up to 128; not starting with '.' or '-')",
        )
    return name[:colon], tag


def _split_registry(name: str) -> tuple[str, str]:
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry = DEFAULT_REGISTRY if first == _LEGACY_HUB else first
        return registry, remainder
    return DEFAULT_REGISTRY, name


def _check_path(text: str, repository: str) -> None:
    for component in repository.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component and _PATH_COMPONENT.fullmatch(component.lower()):
            raise ImageRefError(text, f"repository name must be lowercase ({component!r})")
        if not component:
            raise ImageRefError(text, "empty repository path component")
        raise ImageRefError(
            text,
            f"invalid repository path component {component!r} "
            "(lowercase letters and digits, separated by '.', '_', '__' or '-')",
        )


def parse_image_ref(text: str) -> ImageRef:
    """Parse and normalise an image reference; raise ImageRefError naming the problem."""
    stripped = text.strip()
    if not stripped:
        raise ImageRefError(text, "empty image reference")
    if any(ch.isspace() for ch in stripped):
        raise ImageRefError(text, "image references contain no spaces")
    name, digest = _split_digest(text, stripped)
    name, tag = _split_tag(text, name)
    if not name:
        raise ImageRefError(text, "missing repository name")
    registry, repository = _split_registry(name)
    if not _DOMAIN.fullmatch(registry):
        raise ImageRefError(text, f"invalid registry {registry!r}")
    _check_path(text, repository)
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if len(f"{registry}/{repository}") > _NAME_MAX:
        raise ImageRefError(text, f"name is longer than {_NAME_MAX} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)


def components_with_digests(components: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """``{name: {"image": canonical ref, "digest": sha256:… or None}}`` for a release manifest.

    Never raises: a reference that does not parse is kept as given with digest None, because the
    manifest records what was released and the candidate API already rejected malformed refs.
    """
    out: dict[str, dict[str, str | None]] = {}
    for name in sorted(components):
        text = components[name]
        try:
            ref = parse_image_ref(text)
        except ImageRefError:
            out[name] = {"image": text, "digest": None}
        else:
            out[name] = {"image": str(ref), "digest": ref.digest}
    return out
