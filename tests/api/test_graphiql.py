"""GraphiQL is served by the app itself: no CDN, works with no internet; its assets live at
content-hashed URLs cached for a year, the page itself is never cached, and the example it
opens with is a valid operation against the served schema."""

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
from graphql import ArgumentNode, IntValueNode, Visitor, build_schema, parse, validate, visit

from stacklo.config import Settings
from stacklo.graphiql import ASSETS_PATH, DEFAULT_QUERY, EXAMPLE_TABS
from tests.conftest import JWT_SECRET, Server
from tests.helpers import GraphQLHTTP, deposit, sign_up

SCHEMA = Path(__file__).resolve().parents[2] / "schema.graphql"
IMMUTABLE = "public, max-age=31536000, immutable"
HASHED = re.compile(re.escape(ASSETS_PATH) + r"/([0-9a-f]{16})/(.+)")


async def _page(http: httpx.AsyncClient) -> httpx.Response:
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    return page


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(' + re.escape(ASSETS_PATH) + r'/[^"]+)"', html)


def _page_setting(html: str, name: str) -> Any:
    """A setting of the page's inline script (each is one line of JSON)."""
    found = re.search(rf"^  {name}: (.*?),?$", html, re.MULTILINE)
    assert found, f"{name} not in the page"
    return json.loads(found.group(1))


class _Firsts(Visitor):
    """Every literal `first:` argument in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[int] = []

    def enter_argument(self, node: ArgumentNode, *_: object) -> None:
        if node.name.value == "first" and isinstance(node.value, IntValueNode):
            self.values.append(int(node.value.value))


async def test_graphiql_page_has_no_external_url_and_its_assets_load(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        html = (await _page(http)).text
        assert "graphiql" in html.lower()
        assert not re.search(r"https?://", html), "the page must not reference any external URL"
        assets = _assets(html)
        assert len(assets) >= 4
        for asset in assets:
            response = await http.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000
        assert (await http.get(ASSETS_PATH + "/../../config.py")).status_code == 404


async def test_assets_are_content_hashed_and_immutable_and_the_page_is_not_cached(
    server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await _page(http)
        # The page names the current digests, so it must be asked for again every time.
        page_cache = {d.strip() for d in page.headers["cache-control"].split(",")}
        assert page_cache & {"no-cache", "no-store"}, page_cache
        assert not any(d.startswith("max-age") or d == "immutable" for d in page_cache)

        assets = _assets(page.text)
        names = set()
        for asset in assets:
            match = HASHED.fullmatch(asset)
            assert match, f"not a content-hashed URL: {asset}"
            digest, name = match.groups()
            names.add(name)
            response = await http.get(asset)
            assert response.status_code == 200, asset
            assert response.headers["cache-control"] == IMMUTABLE
            assert response.headers["content-type"].startswith(
                "text/javascript" if name.endswith(".js") else "text/css"
            )
            assert hashlib.sha256(response.content).hexdigest()[:16] == digest, asset

            # Another digest for the same file: never these bytes, never cached.
            tampered = f"{ASSETS_PATH}/{digest[:-1]}{'0' if digest[-1] != '0' else '1'}/{name}"
            for wrong in (tampered, f"{ASSETS_PATH}/{name}", f"{ASSETS_PATH}/{'0' * 16}/{name}"):
                refused = await http.get(wrong)
                assert refused.status_code == 404, wrong
                assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
                assert "immutable" not in refused.headers.get("cache-control", "")
        assert {"stacklo/page.js", "stacklo/page.css", "graphiql/graphiql.min.js"} <= names

        # A real digest with another file's name, or a file the page does not load: 404.
        first = HASHED.fullmatch(assets[0])
        assert first
        digest = first.group(1)
        for other in ("stacklo/page.js", "stacklo/me.graphql", "graphiql/LICENSE"):
            assert (await http.get(f"{ASSETS_PATH}/{digest}/{other}")).status_code == 404
        assert (await http.post(assets[0])).status_code == 405


async def test_the_example_operations_are_valid_against_the_served_schema(
    server: Server, client: GraphQLHTTP
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        html = (await _page(http)).text
    tabs = [tab["query"] for tab in _page_setting(html, "defaultTabs")]
    assert tabs == list(EXAMPLE_TABS)
    assert _page_setting(html, "defaultQuery") == DEFAULT_QUERY == tabs[0]
    assert "sign in" in DEFAULT_QUERY.lower() and "subscription" in DEFAULT_QUERY.lower()

    schema = build_schema(SCHEMA.read_text())
    max_page = Settings(jwt_secret=JWT_SECRET).max_page_size
    for query in tabs:
        document = parse(query)
        assert validate(schema, document) == [], query
        firsts = _Firsts()
        visit(document, firsts)
        assert all(0 < first <= max_page for first in firsts.values), firsts.values

    # The `me` example as the server runs it: within every limit, with the user's money.
    user = await sign_up(client)
    started = await deposit(client, user, "12.50")
    answer = await client.post(DEFAULT_QUERY, token=user.access)
    assert "errors" not in answer, answer
    me = answer["data"]["me"]
    assert me["email"] == user.email
    assert me["wallets"][0]["balance"] == {"amount": "12.50", "currency": "NGN"}
    edges = me["transactions"]["edges"]
    assert [e["node"]["reference"] for e in edges] == [started["transaction"]["reference"]]
    # Signed out, it still runs: `me` is null.
    assert await client.data(DEFAULT_QUERY) == {"me": None}
