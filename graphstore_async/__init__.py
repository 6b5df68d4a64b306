"""graphstore-async: an RDF graph store whose every request can run later."""

__version__ = "0.1.0"
