"""Check a Lambda package built by `make lambda`: under Lambda's size limits, lean, for the runtime it names; write its sizes."""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path

MIB = 1024 * 1024
# Lambda takes 50 MiB zipped for a direct upload and 250 MiB unzipped; 120 MiB unzipped leaves room to grow.
MAX_ZIPPED = 50 * MIB
MAX_UNZIPPED = 120 * MIB
# Training-only libraries, and what the Lambda runtime already provides: none may be in the package.
FORBIDDEN = ("sklearn", "scipy", "pandas", "boto3", "botocore", "s3transfer")
REQUIRED = ("handler.py", "zappa_settings.py", "predict.py", "eta311/data/jobs.py", "models/model_card.json")


def measure(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    names = {info.filename for info in infos}
    top = {name.split("/")[0] for name in names}
    tags = {m.group(1) for name in names if (m := re.search(r"\.cpython-(\d+)-x86_64-linux-gnu\.so$", name))}
    return {
        "zip": str(path),
        "zipped_bytes": path.stat().st_size,
        "unzipped_bytes": sum(info.file_size for info in infos),
        "files": len(infos),
        "forbidden": sorted(name for name in FORBIDDEN if name in top),
        "missing": sorted(name for name in REQUIRED if name not in names),
        "cpython_tags": sorted(tags),
    }


def problems(sizes: dict, runtime: str) -> list[str]:
    found = []
    if sizes["zipped_bytes"] > MAX_ZIPPED:
        found.append(f"zipped {sizes['zipped_bytes'] / MIB:.1f} MiB is over {MAX_ZIPPED / MIB:.0f} MiB")
    if sizes["unzipped_bytes"] > MAX_UNZIPPED:
        found.append(f"unzipped {sizes['unzipped_bytes'] / MIB:.1f} MiB is over {MAX_UNZIPPED / MIB:.0f} MiB")
    if sizes["forbidden"]:
        found.append(f"the package holds {', '.join(sizes['forbidden'])}")
    if sizes["missing"]:
        found.append(f"the package lacks {', '.join(sizes['missing'])}")
    # Compiled wheels for another Python than the runtime's fail at import on Lambda, not here.
    wanted = runtime.removeprefix("python").replace(".", "")
    if sizes["cpython_tags"] != [wanted]:
        found.append(f"compiled modules are for cpython {sizes['cpython_tags']}, the runtime is {runtime}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("zip", type=Path)
    parser.add_argument("--stage", default="dev", help="the zappa_settings.json stage whose runtime to check against")
    parser.add_argument("--settings", type=Path, default=Path("zappa_settings.json"))
    args = parser.parse_args(argv)
    runtime = json.loads(args.settings.read_text())[args.stage].get("runtime", "python3.11")
    sizes = measure(args.zip)
    sizes["runtime"] = runtime
    out = args.zip.with_suffix(".sizes.json")
    out.write_text(json.dumps(sizes, indent=2) + "\n")
    print(
        f"{args.zip}: {sizes['zipped_bytes'] / MIB:.1f} MiB zipped (limit {MAX_ZIPPED / MIB:.0f}),"
        f" {sizes['unzipped_bytes'] / MIB:.1f} MiB unzipped (limit {MAX_UNZIPPED / MIB:.0f}), {sizes['files']:,} files;"
        f" sizes in {out}"
    )
    found = problems(sizes, runtime)
    for problem in found:
        print(f"lambda package refused: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
