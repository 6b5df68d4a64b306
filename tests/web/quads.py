"""Helpers of the PATCH and dataset tests: a repository's graphs, each as an rdflib graph, from its N-Quads export."""

from __future__ import annotations

import warnings

import aiohttp
import rdflib
from conftest import Running
from helpers import assert_isomorphic
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID

NQ = "application/n-quads"
Graphs = dict[str | None, rdflib.Graph]  # graph IRI (None: the default graph) -> its triples


def parse_dataset(text: str | bytes, fmt: str = "nquads") -> Graphs:
    """The graphs of an N-Quads or TriG document."""
    with warnings.catch_warnings():  # rdflib's Dataset warns about its own internals
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = rdflib.Dataset()
        dataset.parse(data=text, format=fmt)
        found: Graphs = {}
        for s, p, o, g in dataset.quads():
            name = None if g is None or g == DATASET_DEFAULT_GRAPH_ID else str(g)
            found.setdefault(name, rdflib.Graph()).add((s, p, o))
    return found


async def graphs(http: aiohttp.ClientSession, running: Running, repo: str = "test/repo") -> Graphs:
    """Every graph of the repository that holds a statement."""
    async with http.get(running.repo_url("/service", repo=repo), headers={"Accept": NQ}) as response:
        assert response.status == 200, await response.text()
        return parse_dataset(await response.read())


def assert_graphs(actual: Graphs, expected: Graphs) -> None:
    """The same graphs (an expected graph without statements is expected absent), each isomorphic."""
    assert set(actual) == {name for name, graph in expected.items() if len(graph)}, (set(actual), set(expected))
    for name, graph in actual.items():
        assert_isomorphic(expected[name], graph)
