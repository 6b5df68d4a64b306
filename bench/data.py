"""The benchmark's data: N triples, generated deterministically (seeded), as N-Triples, Turtle and gzip.

Every subject gets the same 20-triple shape: a type, names and labels tagged @en/@fr/@de, typed literals
(xsd:integer, xsd:date, xsd:dateTime, xsd:double), five links to other subjects, a homepage, and an address that
is a blank node with three triples of its own. About N/20 subjects; no triple repeats, so a store holding the
data holds exactly N triples.
"""

from __future__ import annotations

import gzip
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

BASE = "http://example.org/bench/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
TRIPLES_PER_SUBJECT = 20
PREFIXES = {"ex": BASE, "xsd": XSD, "s": BASE + "s/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
_CITIES = ("Berlin", "Lyon", "Porto", "Kraków", "Zürich", "Gent", "Bergen", "Tartu", "Turku", "Brno")
_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu")


@dataclass(frozen=True)
class Dataset:
    triples: int
    subjects: int
    ntriples: Path
    turtle: Path
    gzipped: Path  # the N-Triples, gzip-compressed (sent with Content-Encoding: gzip)

    def subject(self, index: int) -> str:
        return subject_iri(index)

    def sizes(self) -> dict[str, int]:
        return {"triples": self.triples, "subjects": self.subjects, "ntriples_bytes": self.ntriples.stat().st_size,
                "turtle_bytes": self.turtle.stat().st_size, "gzip_bytes": self.gzipped.stat().st_size}


def subject_iri(index: int) -> str:
    return f"{BASE}s/{index}"


def subject_count(triples: int) -> int:
    return max(1, -(-triples // TRIPLES_PER_SUBJECT))


def _subject_lines(i: int, subjects: int, rng: random.Random) -> list[str]:
    s = f"<{BASE}s/{i}>"
    p = f"<{BASE}"
    word = _WORDS[i % len(_WORDS)]
    year, month, day = 1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28)
    links: set[int] = set()
    while len(links) < min(5, subjects - 1):
        other = rng.randrange(subjects)
        if other != i:
            links.add(other)
    address = f"_:a{i}"
    lines = [
        f"{s} <{RDF_TYPE}> <{BASE}Class{i % 10}> .",
        f'{s} {p}name> "{word.title()} {i}"@en .',
        f'{s} {p}name> "{word.title()} numéro {i}"@fr .',
        f'{s} {p}label> "Eintrag {i} ({word})"@de .',
        f'{s} {p}age> "{rng.randrange(1, 100)}"^^<{XSD}integer> .',
        f'{s} {p}born> "{year:04}-{month:02}-{day:02}"^^<{XSD}date> .',
        f'{s} {p}updated> "2024-{month:02}-{day:02}T{rng.randrange(24):02}:{rng.randrange(60):02}:00Z"'
        f"^^<{XSD}dateTime> .",
        f'{s} {p}score> "{rng.random() * 100:.6e}"^^<{XSD}double> .',
        f'{s} {p}weight> "{rng.gauss(70, 12):.4e}"^^<{XSD}double> .',
        f'{s} {p}count> "{rng.randrange(-10_000, 1_000_000)}"^^<{XSD}integer> .',
    ]
    lines += [f"{s} {p}knows> <{BASE}s/{other}> ." for other in sorted(links)]
    lines += [f"{s} {p}note> \"note {k} about {i}\" ." for k in range(5 - len(links))]  # tiny data: no peers
    lines += [
        f"{s} {p}homepage> <http://example.org/pages/{i}> .",
        f"{s} {p}address> {address} .",
        f'{address} {p}street> "{rng.randrange(1, 300)} {word.title()} Street" .',
        f'{address} {p}city> "{_CITIES[rng.randrange(len(_CITIES))]}"@en .',
        f'{address} {p}postcode> "{rng.randrange(10_000, 99_999)}" .',
    ]
    return lines


def write_ntriples(path: Path, triples: int, seed: int = 42) -> int:
    """Write exactly `triples` triples to `path`; the number of subjects."""
    rng = random.Random(seed)
    subjects = subject_count(triples)
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for i in range(subjects):
            lines = _subject_lines(i, subjects, rng)[: triples - written]
            out.write("\n".join(lines))
            out.write("\n")
            written += len(lines)
    return subjects


def write_turtle(source: Path, target: Path) -> None:
    """The same triples as Turtle, with prefixes (pyoxigraph's serializer groups a subject's triples)."""
    quads = ox.parse(path=str(source), format=ox.RdfFormat.N_TRIPLES, rename_blank_nodes=False)
    ox.serialize(quads, output=str(target), format=ox.RdfFormat.TURTLE, prefixes=PREFIXES)


def write_gzip(source: Path, target: Path, level: int = 6) -> None:
    with source.open("rb") as raw, gzip.open(target, "wb", compresslevel=level) as out:
        shutil.copyfileobj(raw, out, 1024 * 1024)


def generate(directory: Path, triples: int, seed: int = 42) -> Dataset:
    directory.mkdir(parents=True, exist_ok=True)
    nt, ttl, gz = directory / "data.nt", directory / "data.ttl", directory / "data.nt.gz"
    subjects = write_ntriples(nt, triples, seed)
    write_turtle(nt, ttl)
    write_gzip(nt, gz)
    return Dataset(triples, subjects, nt, ttl, gz)


def query_subjects(dataset: Dataset, count: int, seed: int = 7) -> list[str]:
    """`count` subject IRIs picked at random (seeded) for the selective query."""
    rng = random.Random(seed)
    return [dataset.subject(rng.randrange(dataset.subjects)) for _ in range(count)]
