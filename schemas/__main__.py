"""``python -m schemas``: the fingerprint of every schema version this release reads and writes.

For consumers in other languages that map fingerprints to writer schemas by a table.
"""

from __future__ import annotations

from schemas.codec import DEFAULT_CODEC


def main() -> None:
    print(f"{'record':<15} {'version':<8} {'fingerprint (hex of the 8 header bytes)':<40} writes")
    for record, version, fingerprint in sorted(
        DEFAULT_CODEC.readable_versions(),
        key=lambda row: (row[0], row[1] if row[1] is not None else float("inf")),
    ):
        label = f"v{version}" if version else "unreleased"
        writes = "yes" if fingerprint == DEFAULT_CODEC.fingerprint(record) else ""
        print(f"{record:<15} {label:<8} {fingerprint.hex():<40} {writes}")


if __name__ == "__main__":
    main()
