#!/usr/bin/env python3
"""Regenerate the JSON files in this directory.

Why a script: the parametric files must match the generators in
`mcast_sdn.topofile` exactly, and the WAN files derive their weights and delays from
published PoP coordinates; writing them by hand would let either drift. The unit
tests check that every file here equals what this script would write.

    python topologies/generate.py          # rewrite the files
    python topologies/generate.py --check  # exit 1 if any file is out of date

WAN data (link lists and coordinates are the published ones; weights derived):

- Abilene: Internet Topology Zoo, ``Abilene.graphml`` (Knight et al., IEEE JSAC
  2011), itself from Internet2's Feb 2005 map (internet2.edu/pubs/200502-IS-AN.pdf):
  11 PoPs, 14 OC-192 links. Node order = Topology Zoo node ids.
- GEANT: SNDlib ``geant`` (Orlowski et al., Networks 2010; topology and traffic of
  GEANT 2004/2005 from Uhlig et al., CCR 2006): 22 PoPs, 36 links. Node order =
  SNDlib order (alphabetical by node id).

Link ``weight`` is the great-circle distance between the two PoPs in km (rounded),
``delay_ms`` the one-way propagation delay over that distance at 200 km/ms (light in
fibre), rounded to 0.01 ms. For GEANT these distances agree with SNDlib's module
costs (which are distances in km) to within 0.2%.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mcast_sdn import topofile  # noqa: E402

FIBRE_KM_PER_MS = 200.0

# (label, latitude, longitude), Topology Zoo node ids 0..10.
ABILENE_POPS = [
    ("New York", 40.71427, -74.00597),
    ("Chicago", 41.85003, -87.65005),
    ("Washington DC", 38.89511, -77.03637),
    ("Seattle", 47.60621, -122.33207),
    ("Sunnyvale", 37.36883, -122.03635),
    ("Los Angeles", 34.05223, -118.24368),
    ("Denver", 39.73915, -104.9847),
    ("Kansas City", 39.11417, -94.62746),
    ("Houston", 29.76328, -95.36327),
    ("Atlanta", 33.749, -84.38798),
    ("Indianapolis", 39.76838, -86.15804),
]
ABILENE_LINKS = [
    (0, 1), (0, 2), (1, 10), (2, 9), (3, 4), (3, 6), (4, 5), (4, 6),
    (5, 8), (6, 7), (7, 8), (7, 10), (8, 9), (9, 10),
]

# (SNDlib node id, city, latitude, longitude), SNDlib order.
GEANT_POPS = [
    ("at1.at", "Vienna", 48.2091, 16.3729),
    ("be1.be", "Brussels", 50.8469, 4.3518),
    ("ch1.ch", "Geneva", 46.2038, 6.1399),
    ("cz1.cz", "Prague", 50.0785, 14.4423),
    ("de1.de", "Frankfurt", 50.1122, 8.6842),
    ("es1.es", "Madrid", 40.4167, -3.7033),
    ("fr1.fr", "Paris", 48.8566, 2.351),
    ("gr1.gr", "Athens", 37.9778, 23.5808),
    ("hr1.hr", "Zagreb", 45.8071, 15.9644),
    ("hu1.hu", "Budapest", 47.4976, 19.0936),
    ("ie1.ie", "Dublin", 53.3416, -6.2573),
    ("il1.il", "Tel Aviv", 32.0714, 34.8097),
    ("it1.it", "Milan", 45.4642, 9.19),
    ("lu1.lu", "Luxembourg", 49.6112, 6.1296),
    ("nl1.nl", "Amsterdam", 52.3236, 4.9407),
    ("ny1.ny", "New York", 40.6698, -73.94384),
    ("pl1.pl", "Poznan", 52.3963, 16.8874),
    ("pt1.pt", "Lisbon", 38.7073, -9.1363),
    ("se1.se", "Stockholm", 59.3617, 17.8742),
    ("si1.si", "Ljubljana", 46.0574, 14.5148),
    ("sk1.sk", "Bratislava", 48.1531, 17.1297),
    ("uk1.uk", "London", 51.5086, -0.1264),
]
GEANT_LINKS = [
    ("at1.at", "ch1.ch"), ("at1.at", "de1.de"), ("at1.at", "hu1.hu"), ("at1.at", "ny1.ny"),
    ("at1.at", "si1.si"), ("be1.be", "fr1.fr"), ("be1.be", "lu1.lu"), ("be1.be", "nl1.nl"),
    ("ch1.ch", "fr1.fr"), ("ch1.ch", "it1.it"), ("cz1.cz", "de1.de"), ("cz1.cz", "pl1.pl"),
    ("cz1.cz", "sk1.sk"), ("de1.de", "fr1.fr"), ("de1.de", "gr1.gr"), ("de1.de", "ie1.ie"),
    ("de1.de", "it1.it"), ("de1.de", "nl1.nl"), ("de1.de", "se1.se"), ("es1.es", "fr1.fr"),
    ("es1.es", "it1.it"), ("es1.es", "pt1.pt"), ("fr1.fr", "lu1.lu"), ("fr1.fr", "uk1.uk"),
    ("gr1.gr", "it1.it"), ("hr1.hr", "hu1.hu"), ("hr1.hr", "si1.si"), ("hu1.hu", "sk1.sk"),
    ("ie1.ie", "uk1.uk"), ("il1.il", "it1.it"), ("il1.il", "nl1.nl"), ("nl1.nl", "uk1.uk"),
    ("ny1.ny", "uk1.uk"), ("pl1.pl", "se1.se"), ("pt1.pt", "uk1.uk"), ("se1.se", "uk1.uk"),
]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of the Earth's mean radius."""
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def _wan(name: str, description: str, pops: list[tuple[str, float, float]],
         links: list[tuple[int, int]]) -> topofile.TopologySpec:
    """One switch s<i> per PoP (label = city), one host h<i> on it, distance weights."""
    switches = [{"name": f"s{i}", "label": label} for i, (label, _, _) in enumerate(pops, 1)]
    out_links = []
    for u, v in links:
        km = great_circle_km(pops[u][1], pops[u][2], pops[v][1], pops[v][2])
        out_links.append({"a": f"s{u + 1}", "b": f"s{v + 1}", "weight": max(1, round(km)),
                          "delay_ms": round(km / FIBRE_KM_PER_MS, 2)})
    hosts = [{"name": f"h{i}", "switch": f"s{i}"} for i in range(1, len(pops) + 1)]
    return topofile.from_dict({"name": name, "description": description,
                               "switches": switches, "links": out_links, "hosts": hosts})


def abilene() -> topofile.TopologySpec:
    return _wan(
        "abilene",
        "Internet2 Abilene backbone, Feb 2005: 11 PoPs, 14 OC-192 links. Source: Internet "
        "Topology Zoo Abilene.graphml (Knight et al., IEEE JSAC 2011), from "
        "internet2.edu/pubs/200502-IS-AN.pdf. Switch labels are the PoP cities; host hN "
        "sits on sN. weight = great-circle km, delay_ms = km / 200.",
        ABILENE_POPS, ABILENE_LINKS)


def geant() -> topofile.TopologySpec:
    index = {node: i for i, (node, _, _, _) in enumerate(GEANT_POPS)}
    pops = [(f"{city} ({node})", lat, lon) for node, city, lat, lon in GEANT_POPS]
    return _wan(
        "geant",
        "GEANT pan-European research network, 2004/2005: 22 PoPs, 36 links. Source: "
        "SNDlib 'geant' (Orlowski et al., Networks 2010; data from Uhlig et al., CCR "
        "2006). Switch labels are 'City (SNDlib node id)'; host hN sits on sN. weight = "
        "great-circle km, delay_ms = km / 200.",
        pops, [(index[a], index[b]) for a, b in GEANT_LINKS])


def leafspine() -> topofile.TopologySpec:
    spec = topofile.leaf_spine(2, 4, 2)
    return topofile.TopologySpec("leafspine", spec.description, spec.switches,
                                 spec.links, spec.hosts)


def build_all() -> dict[str, topofile.TopologySpec]:
    """File name -> spec for every generated file."""
    return {
        "linear3.json": topofile.linear(3),
        "tree2x2.json": topofile.tree(2, 2),
        "ring4.json": topofile.ring(4),
        "fattree4.json": topofile.fat_tree(4),
        "leafspine.json": leafspine(),
        "abilene.json": abilene(),
        "geant.json": geant(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report files that differ; exit 1 if any")
    parser.add_argument("--dir", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for fname, spec in build_all().items():
        path = args.dir / fname
        text = spec.to_json()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(fname)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
