"""Create the router state examples/litellm_proxy/config.yaml routes with.

    python examples/litellm_proxy/make_state.py OUT_DIR [--embedder hashing|static]
    export UNIROUTE_STATE=OUT_DIR

The profiles are named after the deployment ids in config.yaml (mathbot, poet,
big); the data is the synthetic validation set of examples/litellm_sdk.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litellm_sdk import build_demo_router

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="directory to write the router state to")
    parser.add_argument("--embedder", default="static", help="static (default, distils once) or hashing")
    args = parser.parse_args()
    path = build_demo_router(args.embedder).save(args.out)
    print(f"router state written to {path}; export UNIROUTE_STATE={path.resolve()}")
