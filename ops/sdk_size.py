"""``refract sdk size``: the JavaScript SDK's size as written, minified (as served) and gzipped."""

from __future__ import annotations

from typing import TextIO

from api.sdk_route import sdk_bundle

TARGET_GZIPPED_BYTES = 8 * 1024


def main(out: TextIO) -> int:
    """Print the three sizes; exit 1 when the gzipped SDK is over the 8 KB target."""
    bundle = sdk_bundle()
    gzipped = bundle.gzipped_size
    print("api/sdk/refract.js", file=out)
    print(f"  raw       {len(bundle.source):>6} B", file=out)
    print(f"  minified  {len(bundle.minified):>6} B  (rjsmin 1.3, as /sdk/refract.js serves it)", file=out)
    print(f"  gzipped   {gzipped:>6} B  (level 9; target < {TARGET_GZIPPED_BYTES} B)", file=out)
    return 0 if gzipped < TARGET_GZIPPED_BYTES else 1
