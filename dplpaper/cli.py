"""``dplpaper`` console script.

Subcommand groups register themselves in :data:`GROUPS` (name -> function adding a
subparser); add a new group by writing ``_add_<name>(subparsers)`` and listing it there.
"""
from __future__ import annotations

import argparse
import sys


def _data_list(args) -> int:
    from .data import registry

    rows = registry.status()
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        where = f"{r['root']}: {r['where']}" if r["status"] == "found" else "-"
        kind = "shipped" if r["shipped"] else "full"
        print(f"{r['name']:<{w}}  {r['status']:<7}  {kind:<7}  {where}")
        if args.verbose:
            ds = registry.get(r["name"])
            print(f"{'':<{w}}  {ds.description}\n{'':<{w}}  source: {ds.url}\n{'':<{w}}  licence: {ds.licence}\n"
                  f"{'':<{w}}  cite: {ds.citation}")
    return 0


def _data_fetch(args) -> int:
    from .data import registry

    folder = registry.fetch(args.name, dest=args.dest, mirror=args.mirror, show_progress=not args.quiet)
    print(f"{args.name}: {folder}")
    return 0


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="data sets: list, fetch")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    pl = dsub.add_parser("list", help="every registered data set with its status (found where / missing)")
    pl.add_argument("-v", "--verbose", action="store_true", help="also print source, licence and citation")
    pl.set_defaults(func=_data_list)
    pf = dsub.add_parser("fetch", help="download a data set from its public source, verify sha256, resume")
    pf.add_argument("name")
    pf.add_argument("--dest", default=None, help="directory to put <folder> in (default $DPLPAPER_DATA or data/)")
    pf.add_argument("--mirror", default=None, help="replace scheme://host of every URL (local mirrors, tests)")
    pf.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pf.set_defaults(func=_data_fetch)


def _reproduce(args) -> int:
    from . import reproduce

    argv = ["--mode", args.mode] + (["--only", *args.only] if args.only else [])
    argv += ["--no-book"] if args.no_book else []
    return reproduce.main(argv)


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="run every notebook with papermill and build the book")
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    p.add_argument("--no-book", action="store_true", help="skip the Jupyter Book build")
    p.set_defaults(func=_reproduce)


GROUPS = {"data": _add_data, "reproduce": _add_reproduce}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dplpaper", description="dplpaper command-line tools")
    sub = parser.add_subparsers(dest="group", required=True)
    for add in GROUPS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as e:
        print(f"dplpaper: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
