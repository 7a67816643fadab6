"""``course data list`` and ``course data verify [NAME...] [--redownload]``."""
from __future__ import annotations

from .fetch import data_root, verify
from .registry import DATASETS


def cmd_list(args) -> int:
    """Print every dataset with its files, size, license and where it lives."""
    print(f"Data folder: {data_root()}  (set COURSE_DATA_DIR to change it)\n")
    for d in DATASETS.values():
        size = sum(f.size for f in d.files)
        present = sum((data_root() / d.name / f.name).exists() for f in d.files)
        print(f"{d.name:<30} {size / 1e6:7.1f} MB  {present}/{len(d.files)} files present  {d.license}")
        print(f"{'':<30} {d.title}. Cite: {d.citation}")
    return 0


def cmd_verify(args) -> int:
    """Verify (and optionally repair or download) datasets; exit 1 if anything is not ok."""
    names = args.names or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}; known: {', '.join(DATASETS)}")
        return 2
    bad = 0
    for name in names:
        for st in verify(name, redownload=args.redownload, download_missing=args.download):
            print(f"{st.status:<10} {st.dataset}/{st.file}")
            if st.status not in ("ok", "repaired", "downloaded"):
                bad += 1
                for line in st.detail.splitlines():
                    print(f"           {line}")
    print(f"\n{'all files verified' if not bad else f'{bad} file(s) not ok'} in {data_root()}")
    return 1 if bad else 0


def add_commands(sub) -> None:
    """Register ``course data ...``."""
    p = sub.add_parser("data", help="list, verify and download the course datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p_list = dsub.add_parser("list", help="list the datasets, their licenses and what is present")
    p_list.set_defaults(handler=cmd_list)
    p_verify = dsub.add_parser("verify", help="check files against their SHA-256 (and repair them)")
    p_verify.add_argument("names", nargs="*", help="datasets to verify (default: all)")
    p_verify.add_argument("--redownload", action="store_true", help="download corrupt or missing files again")
    p_verify.add_argument("--download", action="store_true", help="download missing files")
    p_verify.set_defaults(handler=cmd_verify)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
