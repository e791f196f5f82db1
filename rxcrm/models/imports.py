"""Import from CSV/Excel (services/imports.py): every import is a row, with what it did.

- `import_job`: who, when, which file, the mapping and options, its state and counts. The
  background runner (rxcrm/tasks.py) works a job in chunks; each chunk's writes, its log
  rows and the job's `done_row` commit together, so an interrupted job resumes exactly
  where it stopped.
- `import_item`: what a job did to one item (created / updated, and the values it
  overwrote) — the undo reads it.
- `import_reject`: a rejected (or skipped) row: its values as read and the reasons — the
  dry run's list and the Excel report are built from it.
- `import_mapping`: a saved mapping (file header → field) to reuse.
- `external_ref`: an item's id in the system it came from (Bitrix24's ID): a second import
  of the same file finds the item instead of duplicating it."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Index, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, json_field, utcnow

# job states
DRAFT, CHECKING, CHECKED, QUEUED, RUNNING, DONE, CANCELLED, FAILED, UNDOING, UNDONE = (
    "draft", "checking", "checked", "queued", "running", "done", "cancelled", "failed", "undoing", "undone")
ACTIVE = (CHECKING, QUEUED, RUNNING, UNDOING)  # the runner works these


class ImportJob(SQLModel, table=True):
    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status", "status", "id"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    entity: str                      # lead | deal | contact | company
    user_id: int = Field(foreign_key="crm_user.id", index=True)  # who runs it (the writes act as them)
    file_name: str                   # as uploaded
    file_token: str                  # the stored copy in the private upload store
    file_size: int = 0
    kind: str = ""                   # csv | xlsx | xls | html
    encoding: str = ""
    delimiter: str = ""
    headers: list = json_field(list)
    mapping: dict = json_field(dict)     # column index (text) → target key
    options: dict = json_field(dict)     # duplicates, match, update_mode, defaults
    mapping_name: str = ""
    status: str = Field(default=DRAFT)
    dry_run: bool = False            # the current/last run only checks (nothing written)
    cancel_requested: bool = False
    total_rows: int = 0
    done_row: int = 0                # the last file row number worked (resume point)
    done_count: int = 0              # data rows worked
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    rate: float = 0.0                # rows per second of the current run
    message: str = ""                # why it failed, or a note
    check: dict = json_field(dict)   # the dry run's counts, kept when the real run starts
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    undone_at: datetime | None = None
    undone_by_id: int | None = Field(default=None, foreign_key="crm_user.id")


class ImportItem(SQLModel, table=True):
    __tablename__ = "import_item"
    __table_args__ = (Index("ix_import_item_job", "job_id", "id"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="import_job.id")
    row: int = 0
    entity_type: str
    entity_id: int
    action: str                      # created | updated
    before: dict = json_field(dict)  # updated: {field key: value before}, "phones"/"emails" added ids
    after: dict = json_field(dict)   # updated: {field key: value set} (undo restores only unchanged ones)


class ImportReject(SQLModel, table=True):
    __tablename__ = "import_reject"
    __table_args__ = (Index("ix_import_reject_job", "job_id", "dry_run", "row"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="import_job.id")
    dry_run: bool = False
    row: int
    skipped: bool = False            # a skipped duplicate (not an error)
    values: list = json_field(list)  # the row as read (text)
    errors: list = json_field(list)  # [{"column": header, "value": text, "message": text}]


class ImportMapping(SQLModel, table=True):
    __tablename__ = "import_mapping"
    __table_args__ = (UniqueConstraint("entity", "name"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    entity: str
    name: str
    columns: dict = json_field(dict)  # header text → target key
    options: dict = json_field(dict)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ExternalRef(SQLModel, table=True):
    __tablename__ = "external_ref"
    __table_args__ = (UniqueConstraint("entity_type", "external_id"),
                      Index("ix_external_ref_item", "entity_type", "entity_id"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    external_id: str
    entity_id: int
    job_id: int | None = Field(default=None, foreign_key="import_job.id")
