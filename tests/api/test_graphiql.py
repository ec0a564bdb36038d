"""GraphiQL is served by the app itself: no CDN, works with no internet."""

import re

import httpx

from stacklo.graphiql import ASSETS_PATH
from tests.conftest import Server


async def test_graphiql_page_has_no_external_url_and_its_assets_load(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "graphiql" in html.lower()
        assert not re.search(r"https?://", html), "the page must not reference any external URL"
        assets = re.findall(r'(?:src|href)="(' + re.escape(ASSETS_PATH) + r'/[^"]+)"', html)
        assert len(assets) >= 4
        for asset in assets:
            response = await http.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000
        assert (await http.get(ASSETS_PATH + "/../../config.py")).status_code == 404
