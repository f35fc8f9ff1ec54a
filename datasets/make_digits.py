"""Write ``cs231n_lib/digits.npz``, the handwritten digits the kit ships for offline use.

The digits are the test set of the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0;
https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits): 1797 images of
8x8 pixels, each pixel counting the "on" dots of a 4x4 block of a 32x32 scan (0..16), with the
digit 0-9 it shows. scikit-learn ships the same file as ``sklearn/datasets/data/digits.csv.gz``
(what its ``load_digits`` reads).

The output is committed; run this only to regenerate or audit it::

    python datasets/make_digits.py                      # from an installed scikit-learn's copy
    python datasets/make_digits.py --from optdigits.tes # from UCI's file (plain or .gz)
    python datasets/make_digits.py --check              # compare with the committed file

Either source is a text file of 1797 lines, 64 pixel values then the label, comma-separated.
scikit-learn is only located, never imported. The .npz holds ``images`` (1797, 8, 8) uint8 and
``labels`` (1797,) uint8 in the file's order, and is written byte for byte the same each time.
"""

import argparse
import gzip
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "cs231n_lib" / "digits.npz"
COUNT, SIDE, LEVELS = 1797, 8, 16


def sklearn_copy():
    """Path of scikit-learn's ``digits.csv.gz`` (scikit-learn is found, not imported)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-learn is not installed: pass --from with UCI's optdigits.tes")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: pass --from with UCI's optdigits.tes")
    return path


def read_digits(path):
    """(images (1797, 8, 8) uint8, labels (1797,) uint8) from a UCI-format text file."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rows = np.loadtxt(io.StringIO(raw.decode("ascii")), delimiter=",", dtype=np.int64, ndmin=2)
    if rows.shape != (COUNT, SIDE * SIDE + 1):
        raise SystemExit(f"{path}: expected {COUNT} rows of {SIDE * SIDE + 1} values, found {rows.shape}")
    pixels, labels = rows[:, :-1], rows[:, -1]
    if pixels.min() < 0 or pixels.max() > LEVELS or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{path}: pixels must lie in 0..{LEVELS} and labels in 0..9")
    return pixels.reshape(COUNT, SIDE, SIDE).astype(np.uint8), labels.astype(np.uint8)


def npz_bytes(arrays):
    """A compressed .npz of ``arrays`` with fixed timestamps (np.savez stamps the current time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1998, 7, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", metavar="FILE",
                        help="UCI's optdigits.tes, plain or gzipped (default: scikit-learn's copy)")
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"default: {OUTPUT.relative_to(REPO)}")
    parser.add_argument("--check", action="store_true",
                        help="do not write; fail unless the output file already holds these bytes")
    args = parser.parse_args(argv)

    source = Path(args.source) if args.source else sklearn_copy()
    images, labels = read_digits(source)
    data = npz_bytes({"images": images, "labels": labels})
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == data
        print(f"{args.out}: {'up to date' if same else 'DIFFERS from'} {source}")
        return 0 if same else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data):,} bytes): {len(images)} digits from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
