"""Repack the broker's jars for the offline bundle: ZIP_STORED (a solid xz over them compresses far better
than over deflated jars), dropping the JNI libraries of other platforms than linux x86-64 from zstd-jni,
snappy-java and lz4-java (the JVM only ever loads its own platform's). Usage: repack_jars.py SRC_LIB DST_LIB"""
import os
import re
import shutil
import sys
import zipfile

src, dst = sys.argv[1:3]
os.makedirs(dst, exist_ok=True)
FOREIGN = re.compile(
    r"^(?:(?:darwin|freebsd|win|aix|linux/(?!amd64/))[^/]*/.*\.(?:so|dll|dylib|a)$"      # zstd-jni
    r"|org/xerial/snappy/native/(?!Linux/x86_64/).+/[^/]+\.(?:so|dll|dylib|a|jnilib)$"  # snappy-java
    r"|net/jpountz/util/(?!linux/amd64/).+/[^/]+\.(?:so|dll|dylib)$)"                     # lz4-java
)
dropped = 0
for name in sorted(os.listdir(src)):
    s, d = os.path.join(src, name), os.path.join(dst, name)
    if not name.endswith(".jar"):
        shutil.copy2(s, d)
        continue
    with zipfile.ZipFile(s) as zi, zipfile.ZipFile(d, "w", zipfile.ZIP_STORED) as zo:
        seen = set()
        for info in zi.infolist():
            if info.filename in seen:
                continue
            seen.add(info.filename)
            if FOREIGN.match(info.filename):
                dropped += 1
                print(f"  drop {name}: {info.filename}")
                continue
            ni = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            ni.external_attr = info.external_attr
            zo.writestr(ni, zi.read(info))
print(f"dropped {dropped} foreign native libraries")
