"""Draw the page's offline map of the five boroughs from 311 records' own coordinates (SVG + its grid).

Each grid cell that holds at least --min-requests requests is painted in the colour of the borough
most of them name, so the outlines of the boroughs appear from the data alone: no tile server, no
CDN. Writes eta311/web/static/map.svg and eta311/web/static/map.json (the grid the page needs to
turn a click into latitude and longitude). Run it once by hand; the small result is committed.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.storage import open_store  # noqa: E402

STATIC = Path(__file__).resolve().parent.parent / "eta311" / "web" / "static"
# The service's own box around the city (payloads.LATITUDE_RANGE / LONGITUDE_RANGE, trimmed to land).
WEST, EAST, SOUTH, NORTH = -74.26, -73.69, 40.49, 40.92
BOROUGH_COLOURS = {
    "MANHATTAN": "#c0392b",
    "BROOKLYN": "#2471a3",
    "QUEENS": "#229954",
    "BRONX": "#b9770e",
    "STATEN ISLAND": "#7d3c98",
}
LABELS = {  # where each name is written, as (lon, lat)
    "Manhattan": (-74.03, 40.80),
    "Brooklyn": (-73.985, 40.625),
    "Queens": (-73.83, 40.665),
    "Bronx": (-73.87, 40.895),
    "Staten Island": (-74.245, 40.52),
}


def cells(data: str, cell_degrees: float) -> tuple[dict[tuple[int, int], collections.Counter], float]:
    """Requests per grid cell and borough; cells are square on the ground at New York's latitude."""
    cell_lat = cell_degrees * math.cos(math.radians((SOUTH + NORTH) / 2))
    store = open_store(data)
    names = [n for n in store.list("") if n.endswith(".json.gz")]
    if not names:
        raise SystemExit(f"no YYYY-MM-DD.json.gz files in {data}")
    found: dict[tuple[int, int], collections.Counter] = collections.defaultdict(collections.Counter)
    for name in names:
        for record in json.loads(gzip.decompress(store.get(name))):
            try:
                lat, lon = float(record["latitude"]), float(record["longitude"])
            except (KeyError, ValueError):
                continue
            if WEST <= lon < EAST and SOUTH <= lat < NORTH and record.get("borough") in BOROUGH_COLOURS:
                found[int((lon - WEST) / cell_degrees), int((NORTH - lat) / cell_lat)][record["borough"]] += 1
    return found, cell_lat


def runs(columns: list[int]) -> list[tuple[int, int]]:
    """Sorted column numbers as (first, length) runs, so a row of cells is one path segment."""
    out: list[tuple[int, int]] = []
    for column in sorted(columns):
        if out and out[-1][0] + out[-1][1] == column:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((column, 1))
    return out


def svg(found: dict, min_requests: int, width: int, height: int, cell_degrees: float, cell_lat: float) -> str:
    rows: dict[str, dict[int, list[int]]] = {b: collections.defaultdict(list) for b in BOROUGH_COLOURS}
    for (column, row), counts in found.items():
        if sum(counts.values()) >= min_requests:
            rows[counts.most_common(1)[0][0]][row].append(column)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" fill="#eaf2f8"/>',
    ]
    for borough, by_row in rows.items():
        d = "".join(f"M{x} {y}h{n}v1h-{n}z" for y in sorted(by_row) for x, n in runs(by_row[y]))
        parts.append(f'<path fill="{BOROUGH_COLOURS[borough]}" fill-opacity="0.55" d="{d}"/>')
    for label, (lon, lat) in LABELS.items():
        x, y = (lon - WEST) / cell_degrees, (NORTH - lat) / cell_lat
        parts.append(
            f'<text x="{x:.0f}" y="{y:.0f}" font-family="sans-serif" font-size="{width // 28}" fill="#1b2631">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of YYYY-MM-DD.json.gz files (e.g. ../shared/data/nyc311)")
    parser.add_argument(
        "--cell-degrees", type=float, default=0.0025, help="width of a grid cell in degrees of longitude"
    )
    parser.add_argument("--min-requests", type=int, default=2, help="requests a cell needs to be drawn")
    parser.add_argument("--out", default=str(STATIC), help="folder to write map.svg and map.json to")
    args = parser.parse_args(argv)
    if "://" not in args.data and not Path(args.data).is_dir():
        parser.error(f"folder not found: {args.data}")

    found, cell_lat = cells(args.data, args.cell_degrees)
    width = math.ceil((EAST - WEST) / args.cell_degrees)
    height = math.ceil((NORTH - SOUTH) / cell_lat)
    drawing = svg(found, args.min_requests, width, height, args.cell_degrees, cell_lat)
    grid = {"west": WEST, "north": NORTH, "cell_lon": args.cell_degrees, "cell_lat": round(cell_lat, 9)}
    grid |= {"width": width, "height": height}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "map.svg").write_text(drawing)
    (out / "map.json").write_text(json.dumps(grid, indent=1) + "\n")
    drawn = sum(1 for c in found.values() if sum(c.values()) >= args.min_requests)
    print(f"map.svg: {drawn} cells of {width}x{height}, {len(drawing) / 1024:.0f} KiB; map.json: the grid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
