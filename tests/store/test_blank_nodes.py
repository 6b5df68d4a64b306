"""Every load is an RDF merge: the same blank node label in two bodies names two different nodes, whichever way
the body is stored (one transaction, or batches for large bodies)."""

from __future__ import annotations

import aiohttp
import pytest
from conftest import StartServer

BODY = b'_:b1 <http://example.org/p> "shared label" .\n[] <http://example.org/p> "anonymous" .\n'
COUNT = "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { GRAPH <http://example.org/g> { ?s ?p ?o } }"


@pytest.mark.parametrize("transactional_load_bytes", [1_000_000, 10], ids=["transaction", "batches"])
async def test_posting_the_same_blank_nodes_twice_makes_new_nodes(
    start_server: StartServer, http: aiohttp.ClientSession, transactional_load_bytes: int,
) -> None:
    running = await start_server(transactional_load_bytes=transactional_load_bytes)
    async with http.put(running.repo_url()) as response:
        assert response.status == 201
    for _ in range(2):
        async with http.post(running.repo_url("/service?graph=http://example.org/g"), data=BODY,
                             headers={"Content-Type": "text/turtle"}) as response:
            assert response.status in (201, 204), await response.text()
    async with http.get(running.repo_url("/sparql"), params={"query": COUNT},
                        headers={"Accept": "application/sparql-results+json"}) as response:
        count = int((await response.json())["results"]["bindings"][0]["n"]["value"])
    assert count == 4
