"""``clipbench publish``: results as a Hugging Face dataset folder (``datasets.load_dataset(DIR, config)`` reads it).

Layout::

    README.md                         dataset card: YAML ``configs`` + the leaderboard + provenance
    data/records.parquet              config ``records`` (default): one row per record, newest per row
    samples/<kind>.parquet            config ``samples_<kind>``: every per-sample row of that kind, with the
                                      record_id, model, dataset and task it belongs to

The records table keeps the columns a reader filters on flat (model, dataset, task, variant, primary metric,
value, CI, n, identities, versions, git commit) and the whole record as JSON text (``record``), so nothing of
the provenance is lost to a schema. Per-sample files are verified (size, SHA-256, record id) before their rows
are copied; fixed-size list columns become lists so files of the same kind with other k still stack.
``hf:ORG/NAME`` builds the folder in a temporary directory and uploads it with ``huggingface_hub``
(``create_repo(..., repo_type="dataset", exist_ok=True)``, then ``upload_folder``).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import logging
import os
import re
import tempfile
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import markdown_text
from clipbench.foundations.fileio import atomic_write_bytes, atomic_write_text, ensure_dir
from clipbench.results.export import export_records
from clipbench.results.records import record_variant
from clipbench.results.samples import SampleFileError, verified_table
from clipbench.results.source import resolve

log = logging.getLogger(__name__)

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def record_row(record: dict) -> dict:
    """One record as a flat row of the records table (``record``: the whole record as JSON)."""
    primary = record.get("primary_metric")
    ci = record.get("ci95") or {}
    return {"record_id": record.get("record_id"), "model": record["model"], "dataset": record["dataset"],
            "task": record["task"], "variant": record_variant(record), "split": record.get("split"),
            "primary_metric": primary, "value": record["metrics"].get(primary), "ci95_low": ci.get("low"),
            "ci95_high": ci.get("high"), "n_samples": record.get("n_samples"),
            "model_identity": record.get("model_identity"), "weights_sha256": record.get("weights_sha256"),
            "dataset_fingerprint": record.get("dataset_fingerprint"), "suite": record.get("suite"),
            "seed": record.get("seed"), "precision": record.get("precision"), "timestamp": record.get("timestamp"),
            "clipbench_version": (record.get("versions") or {}).get("clipbench"),
            "git_commit": (record.get("git") or {}).get("commit"),
            "metrics": json.dumps(record["metrics"], sort_keys=True, allow_nan=False),
            "record": json.dumps(record, sort_keys=True, allow_nan=False, default=str)}


def _parquet(table) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _plain_lists(table):
    """Fixed-size list columns as variable lists (top-5 of one record and top-3 of another stack)."""
    import pyarrow as pa

    fields = [pa.field(f.name, pa.list_(f.type.value_type)) if pa.types.is_fixed_size_list(f.type) else f
              for f in table.schema]
    return table.cast(pa.schema(fields))


def sample_tables(results_dir: Path, records: list[dict]) -> dict[str, object]:
    """Per kind, every record's per-sample rows (verified) with the record's identity in front."""
    import pyarrow as pa

    by_kind: dict[str, list] = {}
    for record in records:
        if not record.get("samples"):
            continue
        try:
            table, kind = verified_table(results_dir, record)
        except SampleFileError as exc:
            log.warning("publish: %s; its rows are left out", exc)
            continue
        table = _plain_lists(table.replace_schema_metadata(None))
        for i, name in enumerate(("record_id", "model", "dataset", "task")):
            table = table.add_column(i, name, pa.array([str(record.get(name))] * table.num_rows, pa.string()))
        by_kind.setdefault(kind, []).append(table)
    return {kind: pa.concat_tables(tables, promote_options="permissive") for kind, tables in sorted(by_kind.items())}


def _card(records: list[dict], kinds: list[str], source: str) -> str:
    import yaml

    from clipbench.results.report.render_markdown import md_table

    configs = [{"config_name": "records", "default": True,
                "data_files": [{"split": "train", "path": "data/records.parquet"}]}]
    configs += [{"config_name": f"samples_{kind}", "data_files": [{"split": "train", "path": f"samples/{kind}.parquet"}]}
                for kind in kinds]
    header = yaml.safe_dump({"pretty_name": "clipbench results", "tags": ["clipbench", "clip", "evaluation"],
                             "configs": configs}, sort_keys=False)

    def number(value) -> str:
        return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.2f}"

    rows = []
    for r in sorted(records, key=lambda r: (r["task"], r["dataset"], r["model"], record_variant(r))):
        ci = r.get("ci95") or {}
        rows.append([r["model"], r["dataset"], r["task"], record_variant(r) or "-", str(r.get("primary_metric")),
                     number(r["metrics"].get(r.get("primary_metric"))),
                     f"[{number(ci.get('low'))}, {number(ci.get('high'))}]" if ci else "-", str(r.get("n_samples"))])
    models = sorted({(r["model"], r.get("weights_sha256") or "-") for r in records})
    datasets = sorted({(r["dataset"], r.get("split") or "-", r.get("dataset_fingerprint") or "-") for r in records})
    versions = sorted({str((r.get("versions") or {}).get("clipbench")) for r in records})
    commits = sorted({str((r.get("git") or {}).get("commit") or "-") for r in records})
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    parts = [
        "---", header.rstrip(), "---", "", "# clipbench results", "",
        f"{len(records)} result records (the newest per model, dataset, task and variant) exported by `clipbench "
        f"publish` from {markdown_text(source)} on {when}. Metrics are percentages (0-100); the CI is a bootstrap "
        "95% interval of the primary metric.", "",
        "Load: `datasets.load_dataset(\"<this folder or repo>\", \"records\")`"
        + (", per-sample rows: " + ", ".join(f"`\"samples_{k}\"`" for k in kinds) if kinds else "") + ".", "",
        "## Leaderboard", "",
        md_table(["model", "dataset", "task", "variant", "metric", "value", "95% CI", "n"], rows), "",
        "## Provenance", "",
        md_table(["model", "weights SHA-256"], [list(m) for m in models]), "",
        md_table(["dataset", "split", "fingerprint"], [list(d) for d in datasets]), "",
        f"clipbench version(s): {markdown_text(', '.join(versions))}; git commit(s): "
        f"{markdown_text(', '.join(commits))}. Each record's full provenance (data identity, extraction settings, "
        "cost, options) is in the `record` column as JSON.", ""]
    return "\n".join(parts)


def write_dataset(source: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """The dataset folder for ``source``'s records under ``out_dir``; returns the files written."""
    import pyarrow as pa

    records = export_records(source)
    if not records:
        raise ClipbenchError(f"{source} holds no result record to publish")
    results_dir = resolve(source).parent
    out = ensure_dir(out_dir)
    written = []
    records_path = out / "data" / "records.parquet"
    atomic_write_bytes(records_path, _parquet(pa.Table.from_pylist([record_row(r) for r in records])), within=out)
    written.append(records_path)
    tables = sample_tables(results_dir, records)
    for kind, table in tables.items():
        path = out / "samples" / f"{kind}.parquet"
        atomic_write_bytes(path, _parquet(table), within=out)
        written.append(path)
    card = out / "README.md"
    atomic_write_text(card, _card(records, list(tables), str(source)), within=out)
    written.append(card)
    return written


def publish(source: str | os.PathLike, to: str) -> str:
    """Write the dataset folder to ``to`` (a directory), or build it and push it to ``hf:ORG/NAME``; returns where."""
    if not to.startswith("hf:"):
        write_dataset(source, to)
        return str(to)
    repo_id = to[3:]
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ClipbenchError(f"--to {to!r}: expected hf:ORG/NAME (letters, digits, '_', '.', '-')")
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise ClipbenchError("publishing to the Hugging Face Hub needs huggingface_hub: pip install huggingface_hub") from exc
    with tempfile.TemporaryDirectory(prefix="clipbench-publish-") as folder:
        write_dataset(source, folder)
        api = HfApi()
        try:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
            api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset",
                              commit_message="clipbench publish")
        except Exception as exc:  # no token, no network, no rights: the Hub's words, in one line
            raise ClipbenchError(f"could not push to the Hugging Face Hub dataset {repo_id} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); log in "
                                 "with `huggingface-cli login` or set HF_TOKEN") from exc
    return f"https://huggingface.co/datasets/{repo_id}"
