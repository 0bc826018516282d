"""``datasets/``: the slice of the AI Catalog the SDK's uploads use, so that ``dataset`` intakes
have something to read.

``Dataset.create_from_file`` / ``create_from_in_memory_data`` POST a multipart body (one part,
``file``) to ``datasets/fromFile/``, poll the ``Location`` they get back until it answers 303,
then GET ``datasets/{id}/``. The upload is streamed to a file under the data directory (never held
in memory; the JSON body limit does not apply), parsed once in chunks to count rows and check it
is CSV, and recorded in the ``datasets`` table. Processing finishes before the 202 is sent, so the
status URL redirects at once.

The multipart parser is a small streaming one written here: python-multipart, which FastAPI's
``Form``/``UploadFile`` need, is not a dependency of the project.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from reconciler.extras import require
from reconciler.service import errors, ids
from reconciler.service.deps import PagingDep, SettingsDep, StoreDep, UserDep, api_root, page_link
from reconciler.service.openapi import ERROR_RESPONSES, json_response
from reconciler.service.records import DatasetRecord
from reconciler.service.render import envelope
from reconciler.service.responses import JSONResponse
from reconciler.service.routes import route
from reconciler.service.settings import dataset_dir

router = APIRouter(tags=["datasets"])
DatasetIdPath = Annotated[str, PathParam(description="Dataset id (24 hex digits).")]
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_DISPOSITION = re.compile(r'\b(name|filename)="([^"]*)"', re.IGNORECASE)
_MAX_PART_HEADERS = 16 * 1024


def render_dataset(record: DatasetRecord) -> dict[str, Any]:
    """The fields the SDK's ``Dataset`` parser requires, plus sizes and columns
    (``schemas/api-dataset-response.schema.json``)."""
    return {
        "datasetId": record.id, "versionId": record.version_id, "name": record.name,
        "categories": record.categories, "creationDate": record.created,
        "createdBy": record.created_by.get("username"), "dataPersisted": True, "isDataEngineEligible": False,
        "isLatestVersion": True, "isSnapshot": True, "processingState": "COMPLETED",
        "datasetSize": record.size, "rowCount": record.row_count, "columnCount": len(record.columns),
        "columns": record.columns, "sampleSize": None,
    }


async def _save_file_part(request: Request, dest: Path) -> str:
    """Stream the multipart part named ``file`` into ``dest``; returns its filename."""
    match = _BOUNDARY.search(request.headers.get("content-type", ""))
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data") or match is None:
        raise errors.HTTPUnsupportedMediaType("expected a multipart/form-data upload with a 'file' part",
                                          errors={"Content-Type": "send multipart/form-data (the SDK's "
                                                                  "Dataset.create_from_file does)"})
    boundary = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    delimiter = b"\r\n" + boundary
    buffer = bytearray()
    state = "preamble"
    filename: str | None = None
    writing = False
    with dest.open("wb") as out:
        async for chunk in request.stream():
            buffer += chunk
            while True:
                if state == "preamble":
                    at = buffer.find(boundary)
                    if at < 0:
                        del buffer[:max(0, len(buffer) - len(boundary))]
                        break
                    del buffer[:at + len(boundary)]
                    state = "after-boundary"
                if state == "after-boundary":
                    if len(buffer) < 2:
                        break
                    if buffer[:2] == b"--":
                        state = "done"
                        break
                    del buffer[:2]  # CRLF
                    state = "headers"
                if state == "headers":
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > _MAX_PART_HEADERS:
                            raise errors.HTTPBadRequest("malformed multipart body: part headers too long")
                        break
                    headers = bytes(buffer[:end]).decode("utf-8", "replace")
                    del buffer[:end + 4]
                    found = {k.lower(): v for k, v in _DISPOSITION.findall(headers)}
                    writing = found.get("name") == "file" and filename is None
                    if writing:
                        filename = found.get("filename") or "data.csv"
                    state = "body"
                if state == "body":
                    end = buffer.find(delimiter)
                    if end < 0:
                        keep = len(delimiter)
                        if writing and len(buffer) > keep:
                            out.write(buffer[:-keep])
                        del buffer[:max(0, len(buffer) - keep)]
                        break
                    if writing:
                        out.write(buffer[:end])
                    del buffer[:end + len(delimiter)]
                    state = "after-boundary"
                if state == "done":
                    break
            if state == "done":
                break
    if state != "done" or filename is None:
        raise errors.HTTPBadRequest("malformed or incomplete multipart body: no complete 'file' part",
                                errors={"file": "upload the data as the multipart part named 'file'"})
    return filename


def _inspect_csv(path: Path) -> tuple[int, list[str]]:
    """Rows and column names, read in chunks so a large upload never sits in memory whole."""
    import pandas as pd

    rows = 0
    columns: list[str] = []
    try:
        with pd.read_csv(path, chunksize=50_000, dtype=str, na_filter=False) as reader:
            for chunk in reader:
                columns = columns or [str(c) for c in chunk.columns]
                rows += len(chunk)
    except pd.errors.EmptyDataError:
        raise errors.HTTPUnprocessable("the uploaded file is empty", errors={"file": "upload a CSV file with a header row"}) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise errors.HTTPUnprocessable(f"the uploaded file is not CSV: {exc}",
                                   errors={"file": "upload a comma-separated UTF-8 file with a header row"}) from None
    if not columns:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]  # a header and no rows
    return rows, columns


async def upload_from_file(request: Request, store: StoreDep, settings: SettingsDep, user: UserDep) -> Response:
    """202 with ``Location`` = the status URL, which redirects (303) to the dataset."""
    require("runner", "uploading a dataset")  # before the body is read: answered 501 by the app's handler
    dataset_id, version_id = ids.new_id(), ids.new_id()
    folder = dataset_dir(settings) / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version_id}.csv"
    try:
        filename = await _save_file_part(request, path)
        rows, columns = await run_in_threadpool(_inspect_csv, path)
        record = DatasetRecord(id=dataset_id, version_id=version_id, name=Path(filename).name[:255] or "data.csv",
                               path=str(path.resolve()), size=path.stat().st_size, row_count=rows, columns=columns,
                               categories=[], created=ids.iso(ids.utcnow()), created_by=user.as_api())
        store.create_dataset(record)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    location = f"{api_root(request)}datasets/{dataset_id}/uploadStatus/"
    return JSONResponse({"statusId": dataset_id, "catalogId": dataset_id, "catalogVersionId": version_id},
                        status_code=202, headers={"Location": location})


async def upload_status(request: Request, dataset_id: DatasetIdPath, store: StoreDep) -> Response:
    store.get_dataset(dataset_id)
    return Response(status_code=303, headers={"Location": f"{api_root(request)}datasets/{dataset_id}/"})


async def get_dataset(dataset_id: DatasetIdPath, store: StoreDep) -> JSONResponse:
    return JSONResponse(render_dataset(store.get_dataset(dataset_id)))


async def list_datasets(request: Request, store: StoreDep, paging: PagingDep) -> JSONResponse:
    page = store.list_datasets(offset=paging.offset, limit=paging.limit)
    items = [render_dataset(record) for record in page.items]
    return JSONResponse(envelope(page, items, offset=paging.offset, limit=paging.limit,
                                 link=page_link(request, paging.limit)))


async def delete_dataset(dataset_id: DatasetIdPath, store: StoreDep) -> Response:
    record = store.delete_dataset(dataset_id)
    shutil.rmtree(Path(record.path).parent, ignore_errors=True)
    return Response(status_code=204)


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "contentMediaType": "text/csv",
                            "description": "A comma-separated UTF-8 file with a header row (422 otherwise)."}}}}}}}
route(router, "/datasets/fromFile/", upload_from_file, methods=["POST"], status_code=202,
      responses=ERROR_RESPONSES, summary="Upload a dataset file (multipart, part 'file')", openapi_extra=UPLOAD_BODY)
_SHAPE = "ApiDatasetResponse"
route(router, "/datasets/", list_datasets, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE, listed=True)}, summary="List datasets")
route(router, "/datasets/{dataset_id:hex24}/", get_dataset, methods=["GET"],
      responses={**ERROR_RESPONSES, **json_response(_SHAPE)}, summary="Get a dataset")
route(router, "/datasets/{dataset_id:hex24}/", delete_dataset, methods=["DELETE"], status_code=204,
      response_class=Response, responses=ERROR_RESPONSES, summary="Delete a dataset and its file")
route(router, "/datasets/{dataset_id:hex24}/uploadStatus/", upload_status, methods=["GET"], status_code=303,
      response_class=Response, responses=ERROR_RESPONSES, summary="Upload status (303 to the dataset when done)")
