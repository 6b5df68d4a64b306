"""Store work runs off the event loop: a long query does not hold up other requests."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import Running

CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


async def test_long_query_does_not_stall_other_requests(server: Running, http: aiohttp.ClientSession) -> None:
    lines = "".join(f'<http://example.org/s{i}> <http://example.org/p> "{i}" .\n' for i in range(300))
    async with http.put(server.repo_url("/service?default"), data=lines.encode(),
                        headers={"Content-Type": "application/n-triples"}) as response:
        assert response.status == 201 or response.status == 204

    async def long_query() -> str:
        async with http.get(server.repo_url("/sparql"), params={"query": CROSS_JOIN},
                            headers={"Accept": "text/csv"}) as response:
            assert response.status == 200
            return await response.text()

    slow = asyncio.create_task(long_query())
    await asyncio.sleep(0.2)  # the long query is on its way
    for _ in range(5):
        async with http.get(server.url("/health")) as response:
            assert response.status == 200
        async with http.get(server.repo_url("/sparql"), params={"query": "ASK { ?s ?p ?o }"}) as response:
            assert (await response.json())["boolean"] is True
    assert not slow.done(), "the cross join finished before the small requests: it proves nothing"
    assert (await slow).splitlines()[1] == str(300**3)
