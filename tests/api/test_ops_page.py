"""/ops, the staff dashboard, over HTTP: an HTML page under a strict CSP with a fresh nonce,
never cached, with no external URL; its assets (graphql-ws's bundle among them, the very file
GraphiQL installs) at content-hashed URLs cached for a year, any other digest a 404; served
even where GraphiQL is off; and the operations it sends are valid against the served schema."""

import hashlib
import json
import re

import httpx
from graphql import OperationDefinitionNode, parse, validate

from stacklo.api import schema
from stacklo.app import create_app
from stacklo.config import Settings
from stacklo.graphiql import VENDOR_DIR
from stacklo.ops import ASSETS_PATH, OPERATIONS
from tests.conftest import JWT_SECRET, Server

IMMUTABLE = "public, max-age=31536000, immutable"
HASHED = re.compile(re.escape(ASSETS_PATH) + r"/([0-9a-f]{16})/([\w.-]+)")


async def _page(http: httpx.AsyncClient) -> httpx.Response:
    page = await http.get("/ops")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    return page


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(' + re.escape(ASSETS_PATH) + r'/[^"]+)"', html)


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


async def test_the_page_runs_under_a_strict_csp_with_a_fresh_nonce(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        first, second = await _page(http), await _page(http)
    html = first.text
    assert "no-store" in first.headers["cache-control"]
    assert not re.search(r"(?:https?:)?//[\w.-]", html), "no external URL, not even //host"

    csp = _directives(first.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]  # the same-origin socket too, as on GraphiQL's page
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] + csp["style-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    nonces = [s.removeprefix("'nonce-").removesuffix("'") for s in csp["script-src"][1:]]
    assert csp["script-src"][0] == "'self'" and len(nonces) == 1 and len(nonces[0]) >= 16

    # Every script is one of our assets, but one inline script that carries the nonce.
    scripts = re.findall(r"<script([^>]*)>", html)
    inline = [attrs for attrs in scripts if "src=" not in attrs]
    assert inline == [f' nonce="{nonces[0]}"']
    assert all(ASSETS_PATH in attrs for attrs in scripts if "src=" in attrs)
    assert "style=" not in html  # style-src has no 'unsafe-inline'

    # A new nonce on every answer.
    second_csp = _directives(second.headers["content-security-policy"])
    assert second_csp["script-src"] != csp["script-src"]
    assert f'nonce="{nonces[0]}"' not in second.text

    # The page's settings: the same-origin endpoint and the operations document, as written.
    settings = json.loads(re.search(r"StackloOps\.start\((\{.*?\})\);", html).group(1))
    assert settings["graphqlPath"] == "/graphql"
    assert settings["operations"] == OPERATIONS
    assert settings["environment"] == "test"


async def test_assets_are_content_hashed_immutable_and_a_tampered_hash_is_404(
    server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        html = (await _page(http)).text
        assets = _assets(html)
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
            if name == "graphql-ws.min.js":
                # The bundle GraphiQL's npm ci installed, not a copy of our own.
                assert (
                    response.content == (VENDOR_DIR / "graphql-ws/graphql-ws.min.js").read_bytes()
                )
            else:
                # Works offline: our own script and styles fetch nothing from anywhere else.
                assert not re.search(rb"https?://|@import|url\(", response.content), name

            # Another digest for the same name: never these bytes, never cached.
            flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
            for wrong in (
                f"{ASSETS_PATH}/{flipped}/{name}",
                f"{ASSETS_PATH}/{'0' * 16}/{name}",
                f"{ASSETS_PATH}/{name}",
                f"{ASSETS_PATH}/missing/{name}",
            ):
                refused = await http.get(wrong)
                assert refused.status_code == 404, wrong
                assert "immutable" not in refused.headers.get("cache-control", "")
        assert names == {"ops.css", "ops.js", "graphql-ws.min.js"}
        assert assets[0].endswith("/ops.css")
        # Script order: graphql-ws defines the global ops.js uses.
        scripts = [HASHED.fullmatch(a).group(2) for a in assets if a.endswith(".js")]
        assert scripts == ["graphql-ws.min.js", "ops.js"]

        # A real digest under another name, or files that are not assets: 404.
        digest = HASHED.fullmatch(assets[0]).group(1)
        for other in ("ops.js", "ops.html", "operations.graphql", "__init__.py", "LICENSE.md"):
            assert (await http.get(f"{ASSETS_PATH}/{digest}/{other}")).status_code == 404, other
        for escape in ("/../../config.py", f"/{digest}/../__init__.py", f"/{digest}/page/ops.js"):
            assert (await http.get(ASSETS_PATH + escape)).status_code == 404, escape
        assert (await http.post(assets[0])).status_code == 405


async def test_the_page_is_served_where_graphiql_is_off() -> None:
    """Staff need it in production, where GraphiQL is off; the page itself holds no data."""
    settings = Settings(jwt_secret=JWT_SECRET, graphiql=False)
    assert not settings.graphiql_enabled
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await _page(http)
        for asset in _assets(page.text):
            assert (await http.get(asset)).status_code == 200, asset


def test_the_operations_are_valid_against_the_served_schema() -> None:
    document = parse(OPERATIONS)
    assert validate(schema._schema, document) == []
    names = {d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode)}
    assert names == {
        "OpsLogIn",
        "OpsRefresh",
        "OpsLogOut",
        "OpsWho",
        "OpsStats",
        "OpsActivity",
        "OpsRates",
    }
