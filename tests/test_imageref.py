"""Image references: the distribution/reference grammar, Docker Hub defaults, sha256 pins."""

from __future__ import annotations

import pytest

from bot.core.imageref import (
    ImageMatch,
    ImageRef,
    ImageRefError,
    components_with_digests,
    match_scanned_image,
    parse_image_ref,
    report_digests,
)

D = "sha256:" + "0123456789abcdef" * 4  # a well-formed digest
D2 = "sha256:" + "f" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27-alpine", "docker.io", "library/nginx", "1.27-alpine", None),
        ("user/app", "docker.io", "user/app", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/user/app:v2", "docker.io", "user/app", "v2", None),
        ("ghcr.io/org/app:1.2", "ghcr.io", "org/app", "1.2", None),
        (f"registry:5000/a/b@{D}", "registry:5000", "a/b", None, D),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
        (f"host:5000/app:tag@{D}", "host:5000", "app", "tag", D),
        ("10.0.0.12:5000/team/svc:2024.09.1", "10.0.0.12:5000", "team/svc", "2024.09.1", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("quay.io/a/b/c/d:latest", "quay.io", "a/b/c/d", "latest", None),
        ("gcr.io/my-proj/my__svc.api-v2:_x", "gcr.io", "my-proj/my__svc.api-v2", "_x", None),
        (f"nginx@{D2}", "docker.io", "library/nginx", None, D2),
        ("  ghcr.io/org/app:1.2\n", "ghcr.io", "org/app", "1.2", None),
    ],
)
def test_valid_references(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = parse_image_ref(text)
    assert ref == ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)
    assert ref.pinned is (digest is not None)
    # the canonical form parses back to the same reference
    assert parse_image_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a@sha256:short", "digest 'sha256:short' must be sha256: followed by 64 lowercase hex"),
        ("", "empty image reference"),
        ("   ", "empty image reference"),
        ("Nginx", "must be lowercase ('Nginx')"),
        ("ghcr.io/Org/app:1", "must be lowercase ('Org')"),
        ("Org/app", "must be lowercase ('Org')"),
        (f"app@sha256:{'A' * 64}", "64 lowercase hex"),
        (f"app@sha512:{'a' * 128}", "only sha256 digests are accepted"),
        ("app@", "empty digest after '@'"),
        ("app@latest", "digest 'latest' is not of the form sha256:<64 hex digits>"),
        ("app:-bad", "invalid tag '-bad'"),
        ("app:" + "t" * 129, "invalid tag"),
        ("app:", "invalid tag ''"),
        ("ghcr.io/org//app", "empty repository path component"),
        ("ghcr.io/", "empty repository path component"),
        ("ghcr.io/org/app-", "invalid repository path component 'app-'"),
        ("my app:1", "no spaces"),
        ("-bad.io:99/app", "invalid registry '-bad.io:99'"),
        (":tag", "missing repository name"),
        ("ghcr.io/" + "a" * 250, "longer than 255"),
    ],
)
def test_invalid_references(text: str, fragment: str) -> None:
    with pytest.raises(ImageRefError) as info:
        parse_image_ref(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)  # the message names the reference


@pytest.mark.parametrize(
    ("text", "canonical", "familiar"),
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("user/app:1", "docker.io/user/app:1", "user/app:1"),
        ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
        (f"registry:5000/a/b@{D}", f"registry:5000/a/b@{D}", f"registry:5000/a/b@{D}"),
        (f"nginx:1@{D}", f"docker.io/library/nginx:1@{D}", f"nginx:1@{D}"),
    ],
)
def test_canonical_and_familiar_forms(text: str, canonical: str, familiar: str) -> None:
    ref = parse_image_ref(text)
    assert str(ref) == canonical
    assert ref.familiar() == familiar


def test_components_with_digests_for_the_manifest() -> None:
    out = components_with_digests({"worker": "ghcr.io/org/worker:1.2", "api": f"ghcr.io/org/api@{D}", "bad": "X Y"})
    assert out == {
        "api": {"image": f"ghcr.io/org/api@{D}", "digest": D},
        "bad": {"image": "X Y", "digest": None},
        "worker": {"image": "ghcr.io/org/worker:1.2", "digest": None},
    }
    assert list(out) == ["api", "bad", "worker"]


COMPONENTS = {
    "api": f"ghcr.io/org/api@{D}",
    "web": "ghcr.io/org/web:1.2",
    "proxy": f"docker.io/library/nginx:1.27@{D2}",
}


@pytest.mark.parametrize(
    ("artifact", "others", "expected"),
    [
        ("ghcr.io/org/api:1.2", [f"ghcr.io/org/api@{D}"], ImageMatch("api", COMPONENTS["api"], "digest")),
        (f"ghcr.io/org/api@{D}", [], ImageMatch("api", COMPONENTS["api"], "digest")),
        ("anything:else", [D], ImageMatch("api", COMPONENTS["api"], "digest")),  # Metadata.ImageID
        ("ghcr.io/org/api:1.2", [], None),  # a digest-only pin needs the report to name that digest
        ("ghcr.io/org/web:1.2", [], ImageMatch("web", COMPONENTS["web"], "tag")),
        ("ghcr.io/org/web:1.3", [], None),
        ("ghcr.io/org/web", [], None),  # :latest is not :1.2
        ("nginx:1.27", [], ImageMatch("proxy", COMPONENTS["proxy"], "tag")),
        ("nginx:1.27", [f"nginx@{D}"], ImageMatch("api", COMPONENTS["api"], "digest")),  # the bytes decide
        ("index.docker.io/library/nginx:1.27", ["nginx@sha256:" + "e" * 64], None),  # other bytes under the tag
        ("checkout-api:2.0.0", [], None),
        ("not a ref <!here>", [], None),
    ],
)
def test_a_scanned_image_matches_a_component_by_digest_first_then_by_tag(
    artifact: str, others: list[str], expected: ImageMatch | None
) -> None:
    assert match_scanned_image(artifact, report_digests(artifact, others), COMPONENTS) == expected


def test_report_digests_come_from_the_artifact_repo_digests_and_image_id_only() -> None:
    found = report_digests(f"x@{D}", [f"ghcr.io/a/b@{D2.upper().replace('SHA256', 'sha256')}", "sha256:short", "junk"])
    assert found == {D, D2}
