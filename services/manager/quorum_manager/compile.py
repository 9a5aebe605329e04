"""Show what a mandate file compiles to: ``python -m quorum_manager.compile my_mandate.yaml``.

Prints the ``MandateCompiled`` record as JSON and exits 0; on a refused mandate prints
``error: <field>: <message>`` on stderr and exits 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from quorum_manager.compiler import compile_mandate
from quorum_manager.mandate import MandateError, accept_mandate, read_mandate_text

USAGE = "usage: python -m quorum_manager.compile [MANDATE_FILE]  (no file: the packaged default mandate)"


def main(argv: Sequence[str] | None = None) -> int:
    """Compile the mandate file named in ``argv`` (or the default mandate); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        accepted = accept_mandate(read_mandate_text(args[0] if args else None))
    except MandateError as exc:
        for field, message in exc.problems:
            print(f"error: {field}: {message}", file=sys.stderr)
        return 2
    record = compile_mandate(accepted.mandate, accepted.source_document, ts_event=0, version=1,
                             explicit_fields=set(accepted.explicit_fields))
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
