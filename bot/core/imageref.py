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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_REGISTRY",
    "ImageRef",
    "ImageMatch",
    "ImageRefError",
    "components_with_digests",
    "match_scanned_image",
    "parse_image_ref",
    "report_digests",
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


@dataclass(frozen=True)
class ImageMatch:
    """Which of a candidate's components a scanned image is, and how that was established."""

    component: str
    image: str  # the candidate's reference, as stored
    by: Literal["digest", "tag"]


def report_digests(artifact: str, others: Iterable[str]) -> frozenset[str]:
    """The sha256 digests a scan report names: in its artifact (``name@sha256:…``) and in ``others``.

    ``others`` are ``Metadata.RepoDigests`` entries (``repo@sha256:…``) and ``Metadata.ImageID``
    (a bare ``sha256:…``). A text that is neither is skipped: it cannot name the candidate's bytes.
    """
    found: set[str] = set()
    for text in (artifact, *others):
        candidate = text.strip().lower() if "@" not in text else text.strip().rpartition("@")[2].lower()
        if _SHA256.fullmatch(candidate):
            found.add(candidate)
    return frozenset(found)


def match_scanned_image(artifact: str, digests: frozenset[str], components: Mapping[str, str]) -> ImageMatch | None:
    """The component a report with ``artifact`` (its ArtifactName) and ``digests`` scanned, or None.

    A digest match is the strongest and wins over a tag match anywhere: it names the exact bytes,
    whatever repository or tag the scanner saw them under. A pinned component (``@sha256:…``) is
    matched by tag only when the report names no digest at all (a scan of a tarball, say) and the
    component has a tag; when the report does name digests, none of them being the pinned one
    means other bytes were scanned, whatever the tag says. An unpinned component matches the same
    repository and tag, Docker Hub defaults normalised (``nginx:1.27`` is ``docker.io/library/nginx:1.27``).
    """
    try:
        scanned: ImageRef | None = parse_image_ref(artifact)
    except ImageRefError:
        scanned = None  # a file path or a hostile name: only a digest can still tie it to a component
    by_tag: ImageMatch | None = None
    for name in sorted(components):
        try:
            ref = parse_image_ref(components[name])
        except ImageRefError:
            continue  # the candidate API stores only refs that parse; an older row that does not cannot match
        if ref.digest is not None and ref.digest in digests:
            return ImageMatch(name, components[name], "digest")
        same_tag = (
            scanned is not None and scanned.tag is not None and (scanned.name, scanned.tag) == (ref.name, ref.tag)
        )
        if by_tag is None and same_tag and (ref.digest is None or not digests):
            by_tag = ImageMatch(name, components[name], "tag")
    return by_tag
