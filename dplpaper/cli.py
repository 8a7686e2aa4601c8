"""``dplpaper`` console script.

Subcommand groups register themselves in :data:`GROUPS` (name -> function adding a
subparser); add a new group by writing ``_add_<name>(subparsers)`` and listing it there.
"""
from __future__ import annotations

import argparse
import sys

#: method names of ``dplpaper run`` (as dispatched by :func:`dplpaper.experiments.streamflow.run_case2`
#: and :func:`~dplpaper.experiments.streamflow.run_pub_folds`; a test checks both lists against that
#: module's dispatch). Without ``--methods`` a case runs its function's default methods.
CASE2_METHODS = ("dpl", "dpl_extra", "dpl_nmul1", "dpl_dynamic", "lstm", "vic_gz", "regionalization", "vic_sceua",
                 "sceua")
CASE3_METHODS = ("dpl", "regionalization")
#: Case2Config attribute a method needs (a method whose setting is empty in the chosen mode is an error)
CASE2_NEEDS = {"dpl_extra": "extra_attributes", "dpl_dynamic": "dynamic", "lstm": "lstm", "vic_gz": "vic",
               "vic_sceua": "vic"}
CASE3_PARTS = ("pub", "scaling")
#: parts of ``dplpaper run case1``: every method x density x seed (``runs``), the budget sweep (``sweep``)
CASE1_PARTS = ("runs", "sweep")


def _data_list(args) -> int:
    from .data import registry

    rows = registry.status()
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        where = f"{r['root']}: {r['where']}" if r["status"] == "found" else "-"
        kind = "shipped" if r["shipped"] else "full"
        print(f"{r['name']:<{w}}  {r['status']:<7}  {kind:<7}  {where}")
        if r.get("note"):
            print(f"{'':<{w}}  {r['note']}")
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

    reproduce.check_only(args.only)  # a typo is an error (listing the notebooks), before anything runs
    argv = ["--mode", args.mode] + (["--only", *args.only] if args.only else [])
    argv += ["--no-book"] if args.no_book else []
    argv += ["--jobs", str(args.jobs)] + (["--timings", args.timings] if args.timings else [])
    return reproduce.main(argv)


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="run every notebook with papermill and build the book")
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    p.add_argument("--no-book", action="store_true", help="skip the Jupyter Book build")
    p.add_argument("--jobs", type=int, default=2, help="notebook groups side by side (default 2; 1 = in order)")
    p.add_argument("--timings", help="write each notebook's wall time to this JSON file")
    p.set_defaults(func=_reproduce)


def _overrides(cfg, args):
    """Apply the command line's ``--seeds``, ``--regionalization-evals``, ``--regionalization-refine-steps``,
    ``--forcing`` and then every ``--set KEY=VALUE`` (:func:`dplpaper.config.apply_overrides`) to a case config."""
    if args.seeds:
        cfg.seeds = tuple(args.seeds)
    if args.regionalization_evals:
        cfg.regionalization_max_evals = int(args.regionalization_evals)
    if getattr(args, "regionalization_refine_steps", None) is not None:
        cfg.regionalization_refine_steps = int(args.regionalization_refine_steps)
    if getattr(args, "forcing", None):
        cfg.forcing = args.forcing
    if getattr(args, "set", None):
        from .config import apply_overrides

        apply_overrides(cfg, args.set)
    return cfg


def _default_methods(fn) -> tuple:
    """The default of ``fn``'s ``methods`` argument (the methods a case runs without --methods)."""
    import inspect

    return tuple(inspect.signature(fn).parameters["methods"].default)


def _check_choices(values, valid, option: str, case: str) -> None:
    bad = [v for v in values if v not in valid]
    if bad:
        raise ValueError(f"{case}: unknown {option} {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")


def validate_run_args(args) -> None:
    """Check ``dplpaper run`` arguments against the known values before any data is loaded;
    raises ValueError naming the option and listing the valid choices."""
    case = args.case
    if args.variant and case != "case1":
        raise ValueError("--variant applies to case1 only")
    if case == "case1":
        from .experiments.case1_run import CASE1_METHODS

        _check_choices(args.methods or (), CASE1_METHODS, "--methods", case)
        _check_choices(args.parts or (), CASE1_PARTS, "--parts", case)
        for opt, val in (("--folds", args.folds), ("--scaling-seeds", args.scaling_seeds),
                         ("--no-baseline", args.no_baseline), ("--forcing", args.forcing),
                         ("--regionalization-evals", args.regionalization_evals),
                         ("--regionalization-refine-steps", args.regionalization_refine_steps)):
            if val:
                raise ValueError(f"{opt} does not apply to case1")
    elif case == "case2":
        _check_choices(args.methods or (), CASE2_METHODS, "--methods", case)
        for opt, val in (("--parts", args.parts), ("--folds", args.folds), ("--scaling-seeds", args.scaling_seeds)):
            if val:
                raise ValueError(f"{opt} applies to case3 only")
        if args.no_baseline:
            raise ValueError("--no-baseline applies to case3 only")
    elif case == "case3":
        _check_choices(args.methods or (), CASE3_METHODS, "--methods", case)
        _check_choices(args.parts or (), CASE3_PARTS, "--parts", case)
        if args.methods and args.parts and "pub" not in args.parts:
            raise ValueError("case3: --methods selects the PUB methods, but --parts does not include 'pub'")
        if args.folds is not None:
            from .experiments.streamflow import Case3Config

            k = (Case3Config.full if args.mode == "full" else Case3Config.quick)(args.seed).k_folds
            bad = [f for f in args.folds if not 0 <= f < k]
            if bad:
                raise ValueError(f"case3 --mode {args.mode}: --folds {bad} out of range; valid: 0..{k - 1} "
                                 f"({k} folds)")
            if not args.folds:
                raise ValueError(f"case3: --folds given without fold indices; valid: 0..{k - 1}")
    for opt, vals in (("--seed", [args.seed]), ("--seeds", args.seeds or []),
                      ("--scaling-seeds", args.scaling_seeds or [])):
        if any(v < 0 for v in vals):
            raise ValueError(f"{opt} must be >= 0, got {vals}")
    if args.regionalization_evals is not None and args.regionalization_evals < 1:
        raise ValueError(f"--regionalization-evals must be >= 1, got {args.regionalization_evals}")
    refine = getattr(args, "regionalization_refine_steps", None)
    if refine is not None and refine < 0:
        raise ValueError(f"--regionalization-refine-steps must be >= 0, got {refine}")


def _run_case(args) -> int:
    """Run a case study's computation (no notebook): results under ``results/<case>/``, a
    provenance JSON beside them and, with ``--archive``, a copy of the tables in ``book/full_runs``."""
    validate_run_args(args)  # before anything is loaded or run
    import shlex
    import time

    from . import results

    t0 = time.time()
    git0 = results.git_state()
    command = "dplpaper " + shlex.join(args.argv)
    tag = f"_{args.tag}" if args.tag else ""
    if args.case == "case2":
        from .experiments import streamflow as sf

        cfg = _overrides(sf.Case2Config.full(args.seed) if args.mode == "full" else sf.Case2Config.quick(args.seed), args)
        unset = [m for m in args.methods or () if m in CASE2_NEEDS and not getattr(cfg, CASE2_NEEDS[m], True)]
        if unset:
            raise ValueError(f"case2 --mode {args.mode}: method(s) {unset} not configured in this mode "
                             f"(Case2Config.{', '.join(CASE2_NEEDS[m] for m in unset)} is empty)")
        methods = tuple(args.methods or _default_methods(sf.run_case2))
        out = sf.run_case2(cfg, methods=methods, tag=tag, progress=not args.quiet)
        store = out["store"]
        print(out["medians"].round(3).to_string())
        extra = {"mode": cfg.mode, "forcing": cfg.forcing, "methods": list(methods), "seeds": list(cfg.seeds),
                 "n_basins": len(out["basins"]),
                 "dpl_epochs": cfg.dpl.epochs, "regionalization_max_evals": cfg.regionalization_max_evals,
                 "regionalization_refine_steps": cfg.regionalization_refine_steps,
                 "regionalization_refine_max_steps": cfg.regionalization_refine_max_steps,
                 "sceua_max_evals": cfg.sceua_max_evals,
                 "epochs_per_method": {label: st.epochs for m, (label, _, st, _) in sf._learned_methods(cfg).items()
                                       if m in methods},
                 "wall_time_per_method_s": {k: round(v, 1) for k, v in out["wall_time_s"].items()}}
    elif args.case == "case1":
        from .experiments.case1_run import run_case1
        from .experiments.configs import Case1Config

        cfg = _overrides(Case1Config.for_mode(args.mode, variant=args.variant or "real"), args)
        methods = tuple(args.methods or ("gz", "ga", "sceua"))
        parts = args.parts or ["runs"]
        store, walls = results.RunStore("case1", f"{cfg.variant}_{cfg.mode}", tag), {}
        if "runs" in parts:
            t1 = time.time()
            out = run_case1(cfg, methods=methods, tag=tag, progress=not args.quiet)
            store = out["store"]
            walls["runs"] = round(time.time() - t1, 1)
            print(out["runs"].round(4).to_string())
        if "sweep" in parts:   # the optimizer's budget (issue 15): dPL lr x epochs, SCE-UA evaluations
            import pandas as pd

            from .experiments import case1_diagnostics as cd
            from .experiments import soil_moisture as sm

            t1 = time.time()
            data = sm.load_case1(cfg)
            sur = sm.get_surrogate(cfg, progress=not args.quiet)
            sweep = pd.concat([cd.budget_sweep(cfg, data, sur, d, seed=cfg.seeds[0]) for d in ("s8", "s4")],
                              ignore_index=True)
            store.write_table("budget_sweep", sweep)
            walls["sweep"] = round(time.time() - t1, 1)
            print(sweep.round(4).to_string())
        extra = {"mode": cfg.mode, "variant": cfg.variant, "parts": parts, "methods": list(methods),
                 "seeds": list(cfg.seeds), "densities": list(cfg.densities), "dpl_epochs": cfg.dpl_epochs,
                 "sce_max_evals": cfg.sce_max_evals, "sce_complexes": cfg.sce_complexes, "wall_time_per_part_s": walls}
    elif args.case == "case3":
        from .experiments import streamflow as sf

        cfg = _overrides(sf.Case3Config.full(args.seed) if args.mode == "full" else sf.Case3Config.quick(args.seed), args)
        if args.scaling_seeds:
            cfg.scaling_seeds = tuple(args.scaling_seeds)
        ds, attrs = sf.load_streamflow_data(cfg.basins, quick=cfg.quick_data, forcing=cfg.forcing)
        basins = [str(b) for b in ds["site"].values]
        folds = sf.pub_folds_for(basins, cfg.k_folds, cfg.fold_seed)
        parts = args.parts or ["pub", "scaling"]
        store = results.RunStore("case3", cfg.mode, tag)
        pub, walls = None, {}
        if "pub" in parts:
            t1 = time.time()
            pub = sf.run_pub_folds(ds, attrs, folds, cfg, tag=tag, progress=not args.quiet, fold_indices=args.folds,
                                   methods=tuple(args.methods or _default_methods(sf.run_pub_folds)), store=store)
            walls["pub"] = round(time.time() - t1, 1)
            print(sf.median_table(pub).round(3).to_string())
        if "scaling" in parts:
            t1 = time.time()
            table = sf.scaling_curve(ds, attrs, folds, cfg, pub_table=pub, tag=tag, progress=not args.quiet,
                                     regionalization=not args.no_baseline, fold_indices=args.folds, store=store)
            walls["scaling"] = round(time.time() - t1, 1)
            print(sf.scaling_summary(table).round(3).to_string())
        extra = {"mode": cfg.mode, "forcing": cfg.forcing, "parts": parts, "scaling_baseline": not args.no_baseline,
                 "methods": list(args.methods or _default_methods(sf.run_pub_folds)),
                 "folds": list(range(cfg.k_folds)) if args.folds is None else list(args.folds), "n_basins": len(basins), "k_folds": cfg.k_folds,
                 "seeds": list(cfg.seeds), "scaling_seeds": list(cfg.scaling_seeds), "fractions": list(cfg.fractions),
                 "dpl_epochs": cfg.dpl.epochs, "regionalization_max_evals": cfg.regionalization_max_evals,
                 "regionalization_complexes": cfg.regionalization_complexes,
                 "regionalization_refine_steps": cfg.regionalization_refine_steps,
                 "regionalization_refine_max_steps": cfg.regionalization_refine_max_steps, "wall_time_per_part_s": walls}
    else:
        raise ValueError(f"unknown case {args.case!r}")
    from .config import config_dict

    extra["config"] = config_dict(cfg)
    prov = results.provenance(command, t0, time.time(), git=git0, **extra)
    store.write_provenance(prov)
    if args.archive:
        dest = store.archive(prov)
        print(f"archived to {dest}")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run a case study's computation without its notebook (e.g. full mode)")
    p.add_argument("case", choices=["case1", "case2", "case3"], help="which case study")
    p.add_argument("--variant", choices=["real", "twin"], default=None,
                   help="case1: real SMAP or the twin (default: real)")
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--seed", type=int, default=0, help="first seed (the config decides how many)")
    p.add_argument("--seeds", type=int, nargs="*", help="explicit seeds (overrides the config's)")
    p.add_argument("--methods", nargs="*", help=f"subset of methods (case2: {' '.join(CASE2_METHODS)}; "
                                                   f"case3 pub: {' '.join(CASE3_METHODS)})")
    p.add_argument("--parts", nargs="*", help=f"case3: which parts ({' '.join(CASE3_PARTS)}; default both); "
                                               f"case1: {' '.join(CASE1_PARTS)} (default runs)")
    p.add_argument("--scaling-seeds", type=int, nargs="*", help="case3: seeds of the scaling curve (overrides the config's)")
    p.add_argument("--folds", type=int, nargs="*", help="case3: test only these fold indices (default all)")
    p.add_argument("--no-baseline", action="store_true",
                   help="case3 scaling: dPL only (the share-1 regionalization is PUB's fit; run --parts pub for it)")
    p.add_argument("--regionalization-evals", type=int, help="SCE-UA budget of the regionalization (overrides the config's)")
    p.add_argument("--regionalization-refine-steps", type=int,
                   help="gradient steps after the regionalization's SCE-UA (0: none; overrides the config's)")
    p.add_argument("--forcing", choices=["daymet", "era5land"], default=None,
                   help="forcing of Cases 2/3 (default: the config's, Daymet)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, dotted for sections (e.g. --set dpl.nmul=4 "
                        "--set regionalization_refine_max_steps=6000); repeatable; the resolved config is "
                        "saved in the run's provenance")
    p.add_argument("--tag", default="", help="suffix of the result file names (e.g. when running methods apart)")
    p.add_argument("--archive", action="store_true", help="copy result tables + provenance to book/full_runs/")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_case)


GROUPS = {"data": _add_data, "reproduce": _add_reproduce, "run": _add_run}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dplpaper", description="dplpaper command-line tools")
    sub = parser.add_subparsers(dest="group", required=True)
    for add in GROUPS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as e:  # DataFormatError, DataNotFoundError, DataFetchError among them
        print(f"dplpaper: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
