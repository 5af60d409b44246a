"""Create the two named blocks the catfact example is built against.

    local-file-system/reconcile-examples   basepath ~/.reconcile/example-storage (expanded)
    process/reconcile-examples              a default Process infrastructure block

Run it with a Python that has Prefect 2 installed. It talks to whatever server
Prefect is configured for: PREFECT_API_URL if set, otherwise Prefect's own
ephemeral local database. Safe to re-run: both blocks are saved with
overwrite=True.
"""
import os
import sys
import warnings

from prefect.filesystems import LocalFileSystem
from prefect.infrastructure import Process
from prefect.settings import PREFECT_API_URL

# Process infrastructure blocks are deprecated in late Prefect 2 releases but
# still what `prefect deployment build -ib process/...` expects.
warnings.filterwarnings("ignore", message=".*Process has been deprecated.*")
# SQLAlchemy's notes about SQLite index reflection, printed by Prefect's ephemeral mode.
warnings.filterwarnings("ignore", message=".*Skipped unsupported reflection.*")

BLOCK_NAME = "reconcile-examples"
STORAGE_BASEPATH = os.path.expanduser("~/.reconcile/example-storage")


def main() -> int:
    os.makedirs(STORAGE_BASEPATH, exist_ok=True)
    target = PREFECT_API_URL.value() or "Prefect's ephemeral local database"
    storage_id = LocalFileSystem(basepath=STORAGE_BASEPATH).save(BLOCK_NAME, overwrite=True)
    infra_id = Process().save(BLOCK_NAME, overwrite=True)
    print(f"blocks saved to {target}:")
    print(f"  local-file-system/{BLOCK_NAME}  {storage_id}  basepath={STORAGE_BASEPATH}")
    print(f"  process/{BLOCK_NAME}            {infra_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
