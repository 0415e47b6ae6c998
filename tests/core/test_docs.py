"""/docs as an operator on a network without internet access opens it: every file it loads is
Linli's own."""

from __future__ import annotations

import re

import httpx


async def test_docs_load_nothing_from_outside(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert assets, page.text
    for url in assets:
        assert url.startswith("/"), url  # no CDN, no other host
        answer = await client.get(url)
        assert answer.status_code == 200, url
    # The page asks for the contract from this server too.
    assert "url: '/openapi.json'" in page.text or 'url: "/openapi.json"' in page.text


async def test_the_vendored_files_come_with_their_licence(client: httpx.AsyncClient) -> None:
    licence = await client.get("/docs/assets/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    assert (await client.get("/docs/assets/../main.py")).status_code == 404
