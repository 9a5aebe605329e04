"""Build of quorum-common's C++ extension (the Avro codec's fast path); everything else is in pyproject.toml.

The extension is optional: without a C++ compiler the package still installs and the codec uses
fastavro alone (quorum_common.avro_fast.BACKEND says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "quorum_common._avrofast",
            sources=["csrc/avrofast.cc"],
            language="c++",
            extra_compile_args=["-std=c++17", "-O2"],
            extra_link_args=["-static-libstdc++"],  # images need no libstdc++ at run time
            optional=True,
        )
    ]
)
