"""Repack wheels for the offline bundle: ZIP_STORED (so that one solid xz over all of them compresses well),
without test folders that the bench never imports, without ccxt's async/pro trees and plotly's JupyterLab
extension, and with unneeded ELF symbols stripped from extension modules that auditwheel did not patch.
RECORD is rewritten to match. Usage: slim_wheels.py SRC_DIR DST_DIR TRACE_MODULES_FILE"""
import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile

src, dst, trace_file = sys.argv[1:4]
with open(trace_file) as fh:
    imported = set(fh.read().split())
os.makedirs(dst, exist_ok=True)
NEVER_SLIM = {"backtesting"}  # its bundled CSVs (a data set of the replay) live in backtesting/test/
DROP_PREFIXES = ("ccxt/async_support/", "ccxt/pro/", "plotly/labextension/")
saved = 0

def drop(name: str, dist: str) -> bool:
    if dist in NEVER_SLIM:
        return False
    if name.startswith(DROP_PREFIXES) or re.match(r"[^/]+\.data/data/", name):
        return True
    parts = name.split("/")[:-1]
    for i, p in enumerate(parts):
        if i >= 1 and p in ("tests", "test") and ".".join(parts[: i + 1]) not in imported:
            return True
    return False

def maybe_strip(name: str, data: bytes) -> bytes:
    if not data.startswith(b"\x7fELF") or ".libs/" in name:
        return data
    with tempfile.NamedTemporaryFile(suffix=".so", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        info = subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout
        dyn = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        if "not stripped" not in info or "RPATH" in dyn or "RUNPATH" in dyn:
            return data
        subprocess.run(["strip", "--strip-unneeded", path], check=True)
        return open(path, "rb").read()
    finally:
        os.unlink(path)

def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

for whl in sorted(os.listdir(src)):
    if not whl.endswith(".whl"):
        continue
    dist = whl.split("-")[0].lower()
    with zipfile.ZipFile(os.path.join(src, whl)) as zi:
        entries, record_name = [], None
        for info in zi.infolist():
            if info.filename.endswith(".dist-info/RECORD"):
                record_name = info.filename
                continue
            if drop(info.filename, dist):
                saved += info.file_size
                continue
            data = zi.read(info)
            new = maybe_strip(info.filename, data)
            saved += len(data) - len(new)
            entries.append((info, new))
    rows = [f"{i.filename},{digest(d)},{len(d)}" for i, d in entries] + [f"{record_name},,"]
    with zipfile.ZipFile(os.path.join(dst, whl), "w", zipfile.ZIP_STORED) as zo:
        for info, data in entries:
            ni = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            ni.external_attr = info.external_attr
            zo.writestr(ni, data)
        ni = zipfile.ZipInfo(record_name, date_time=(2020, 1, 1, 0, 0, 0))
        zo.writestr(ni, "\n".join(rows) + "\n")
print(f"removed or stripped {saved / 1e6:.1f} MB (uncompressed)")
