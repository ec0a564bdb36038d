"""The GraphiQL page must work offline: every asset it loads is ours and installed.

Needs ``npm ci --prefix stacklo/graphiql`` first (the Makefile runs it); a missing vendor/
fails here on purpose, since a page pointing at absent files is a broken IDE.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest

from stacklo.graphiql import ASSETS_PATH, PAGE_DIR, VENDOR_DIR, render_html, vendor_missing


class _Refs(HTMLParser):
    """Collects every src/href attribute value in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs.extend(v for k, v in attrs if k in ("src", "href") and v is not None)


def _refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    parser.close()
    return parser.refs


@pytest.mark.parametrize("path", ["/graphql", "/api/graphql"])
def test_page_has_no_external_url(path: str) -> None:
    html = render_html(path)
    assert not re.search(r"https?://", html, re.IGNORECASE)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?//""", html, re.IGNORECASE)


def test_page_assets_exist_in_vendor() -> None:
    assert not vendor_missing(), f"{VENDOR_DIR} incomplete: run npm ci --prefix stacklo/graphiql"
    refs = _refs(render_html())
    assets = [r for r in refs if r.startswith(ASSETS_PATH + "/")]
    # Everything the page references is either a vendored asset or the inline favicon.
    assert sorted(set(refs) - set(assets)) == ["data:,"]
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        # /graphiql-assets/<first 16 hex of the file's SHA-256>/<name>: ours (stacklo/...)
        # come from page/, the bundles from vendor/.
        digest, _, name = asset.removeprefix(ASSETS_PATH + "/").partition("/")
        ours = name.startswith("stacklo/")
        folder = PAGE_DIR if ours else VENDOR_DIR
        target = (folder / name.removeprefix("stacklo/")).resolve()
        assert target.is_relative_to(folder.resolve()), asset
        assert target.is_file(), f"{asset} not found in {folder}"
        assert hashlib.sha256(target.read_bytes()).hexdigest()[:16] == digest, asset


@pytest.mark.parametrize("path", ["/graphql", "/api/graphql"])
def test_page_targets_graphql_path(path: str) -> None:
    html = render_html(path)
    assert f'"{path}"' in html
    assert "isHeadersEditorEnabled: true" in html


def test_path_cannot_break_out_of_script() -> None:
    html = render_html("/graphql</script><script>alert(1)//")
    assert "</script><script>alert" not in html


@pytest.mark.parametrize("bad", ["graphql", "//elsewhere/graphql", "http://elsewhere/graphql"])
def test_rejects_non_path(bad: str) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        render_html(bad)
