"""Identity documents over the API: multipart uploads (each accepted type, and every way a file
or a request can be wrong), who may see a document and fetch it, the review deciding each
document, and what the user's kycStatus does. The server stores files in its local folder
(the embedded default); the S3 adapter has its own tests against a local S3 server."""

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import Databases, Server, own_server
from tests.helpers import (
    JPEG,
    PDF,
    PNG,
    REVIEW_KYC,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    sign_up,
    upload,
    upload_raw,
)

MiB = 1024 * 1024
DOCUMENTS = """{ me { kycStatus kycMayResubmit kycDocuments { id type fileName contentType
  sizeBytes status rejectionReason mayResubmit reviewedAt reviewNote } } }"""
LINK = """query($id: ID!, $s: Int!) { node(id: $id) { ... on KycDocument {
  downloadUrl(expiresInSeconds: $s) } } }"""
OF_USER = """query($id: ID!) { node(id: $id) { ... on User { kycStatus
  kycDocuments { id status rejectionReason reviewNote downloadUrl } } } }"""
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)


@pytest.fixture
async def admin(client: GraphQLHTTP, admin_credentials: tuple[str, str]) -> str:
    return await admin_token(client, admin_credentials)


def stored_files(server: Server) -> set[Path]:
    folder = Path(server.env["STACKLO_DATA_DIR"]) / "files"
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


async def documents(client: GraphQLHTTP, user: SignedUp) -> dict[str, Any]:
    me: dict[str, Any] = (await client.data(DOCUMENTS, token=user.access))["me"]
    return me


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def review(client: GraphQLHTTP, admin: str, **review: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await client.data(REVIEW_KYC, {"i": review}, token=admin))[
        "reviewKyc"
    ]
    return result


# ------------------------------------------------------------------------------ uploads


async def test_each_accepted_type_is_stored_and_the_status_follows(
    client: GraphQLHTTP, server: Server
) -> None:
    user = await sign_up(client)
    before = stored_files(server)

    bill = await upload(client, user, PNG, type="UTILITY_BILL", file_name="bill.png")
    assert bill["userErrors"] == []
    assert bill["document"]["contentType"] == "image/png"
    assert bill["document"]["sizeBytes"] == len(PNG)
    assert bill["document"]["status"] == "UPLOADED"
    assert (await documents(client, user))["kycStatus"] == "PENDING"  # no identity yet

    # The type comes from the bytes: a PDF sent as "selfie.png" of type image/png is a PDF.
    passport = await upload(client, user, PDF, type="PASSPORT", file_name="C:\\scans\\passport.png")
    assert passport["document"]["contentType"] == "application/pdf"
    assert passport["document"]["fileName"] == "passport.png"  # the last path part
    assert (await documents(client, user))["kycStatus"] == "PENDING"  # no selfie yet

    selfie = await upload(
        client, user, JPEG, type="SELFIE", file_name="me.jpg", content_type="image/jpeg"
    )
    assert selfie["document"]["contentType"] == "image/jpeg"

    me = await documents(client, user)
    assert me["kycStatus"] == "SUBMITTED"
    assert [d["type"] for d in me["kycDocuments"]] == ["UTILITY_BILL", "PASSPORT", "SELFIE"]
    assert {d["status"] for d in me["kycDocuments"]} == {"UPLOADED"}
    assert {d["reviewNote"] for d in me["kycDocuments"]} == {None}
    assert len(stored_files(server) - before) == 3

    # The owner's link serves exactly the bytes, as a download this origin never renders.
    url = (await client.data(LINK, {"id": selfie["document"]["id"], "s": 60}, user.access))["node"][
        "downloadUrl"
    ]
    assert url.startswith(server.base_url + "/files/")
    got = await client.http.get(url)
    assert got.status_code == 200 and got.content == JPEG
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in got.headers["cache-control"]


@pytest.mark.parametrize(
    ("data", "file_name", "says"),
    [
        (b"", "empty.png", "empty"),
        (EXE, "passport.png", "not one of them"),  # an executable named .png
        (b"GIF89a" + bytes(64), "a.gif", "image/gif"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "x.png", "svg"),
        (b"%PD", "short.pdf", "not one of them"),  # a truncated signature
    ],
)
async def test_files_that_are_not_accepted_are_refused_and_nothing_is_kept(
    client: GraphQLHTTP, server: Server, data: bytes, file_name: str, says: str
) -> None:
    user = await sign_up(client)
    before = stored_files(server)
    refused = await upload(client, user, data, file_name=file_name)
    assert refused["document"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("INVALID_INPUT", ["input", "file"])
    ]
    assert says in refused["userErrors"][0]["message"]
    assert (await documents(client, user))["kycDocuments"] == []
    assert stored_files(server) == before


async def test_a_file_over_the_document_limit_is_invalid_input(
    client: GraphQLHTTP, server: Server
) -> None:
    user = await sign_up(client)
    before = stored_files(server)
    big = PNG + bytes(10 * MiB + 1 - len(PNG))  # STACKLO_KYC_MAX_BYTES is 10 MB by default
    refused = await upload(client, user, big)
    assert codes(refused) == ["INVALID_INPUT"] and "10 MB" in refused["userErrors"][0]["message"]
    assert stored_files(server) == before
    exact = await upload(client, user, PNG + bytes(10 * MiB - len(PNG)))
    assert exact["userErrors"] == [] and exact["document"]["sizeBytes"] == 10 * MiB


async def test_a_body_over_the_upload_limit_is_413(client: GraphQLHTTP, server: Server) -> None:
    user = await sign_up(client)
    before = stored_files(server)
    response = await upload_raw(client, user.access, PNG + bytes(12 * MiB))
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert (await documents(client, user))["kycDocuments"] == []
    assert stored_files(server) == before


async def test_a_multipart_request_without_the_csrf_header_is_refused(
    client: GraphQLHTTP, server: Server
) -> None:
    """What a form on another site could send: no header a form cannot set."""
    user = await sign_up(client)
    before = stored_files(server)
    response = await upload_raw(client, user.access, PNG, headers={})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Apollo-Require-Preflight" in error["message"]
    assert (await documents(client, user))["kycDocuments"] == []
    assert stored_files(server) == before
    # The other headers Apollo and graphql-http clients send are accepted too.
    for header in ("x-apollo-operation-name", "graphql-preflight"):
        sent = await upload_raw(client, user.access, PNG, headers={header: "1"})
        assert sent.status_code == 200 and sent.json()["data"]["uploadKycDocument"]["document"]


async def test_truncated_and_malformed_multipart_bodies_are_400(
    client: GraphQLHTTP, server: Server
) -> None:
    user = await sign_up(client)
    before = stored_files(server)
    operations = json.dumps(
        {
            "query": "mutation($f: Upload!) { uploadKycDocument(input: {type: PASSPORT, file: $f})"
            " { document { id } } }",
            "variables": {"f": None},
        }
    ).encode()
    whole = (
        b'--xyz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        + operations
        + b'\r\n--xyz\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        + b'{"0": ["variables.f"]}'
        + b'\r\n--xyz\r\nContent-Disposition: form-data; name="0"; filename="a.png"\r\n'
        + b"Content-Type: image/png\r\n\r\n"
        + PNG
        + b"\r\n--xyz--\r\n"
    )
    headers = {
        "authorization": f"Bearer {user.access}",
        "apollo-require-preflight": "true",
        "content-type": "multipart/form-data; boundary=xyz",
    }
    bodies = {
        "cut in the file": whole[: len(whole) - 30],
        "cut in the operations": whole[:60],
        "map names a missing part": whole.replace(b'{"0": [', b'{"9": ['),
        "operations not JSON": whole.replace(b'{"query"', b"{query"),
        "no boundary at all": b"just some bytes",
    }
    for what, body in bodies.items():
        response = await client.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, (what, response.status_code, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", what
    assert (await documents(client, user))["kycDocuments"] == []
    assert stored_files(server) == before
    # Without a map the file is never bound: the variable is missing, a validation error.
    response = await client.http.post(
        "/graphql", content=whole.replace(b'name="map"', b'name="other"'), headers=headers
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # The same request whole is stored: the refusals above were about the bodies.
    response = await client.http.post("/graphql", content=whole, headers=headers)
    assert response.status_code == 200 and "errors" not in response.json(), response.text


async def test_a_file_value_that_is_not_a_file_is_invalid_input(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    reply = await client.post(
        "mutation($i: UploadKycDocumentInput!) { uploadKycDocument(input: $i) {"
        " document { id } userErrors { code field message } } }",
        {"i": {"type": "PASSPORT", "file": "iVBORw0KGgo="}},  # base64 in JSON
        token=user.access,
    )
    payload = reply["data"]["uploadKycDocument"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_INPUT", ["input", "file"])
    ]
    assert "multipart" in payload["userErrors"][0]["message"]


async def test_an_unknown_document_type_is_a_validation_error(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    response = await upload_raw(client, user.access, PNG, type="BANK_STATEMENT")
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "BANK_STATEMENT" in errors[0]["message"]
    assert (await documents(client, user))["kycDocuments"] == []


async def test_uploading_needs_a_signed_in_user(client: GraphQLHTTP, server: Server) -> None:
    before = stored_files(server)
    response = await upload_raw(client, None, PNG)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert stored_files(server) == before


# ------------------------------------------------------------------------------ who sees what


async def test_another_users_documents_and_links_are_refused(
    client: GraphQLHTTP, admin: str
) -> None:
    owner, other = await sign_up(client), await sign_up(client)
    document = (await upload(client, owner, PDF))["document"]

    # Another user: the document is not there to find, and neither are the owner's documents.
    assert (await client.data(LINK, {"id": document["id"], "s": 300}, other.access))["node"] is None
    assert (await client.data(OF_USER, {"id": owner.id}, other.access))["node"] is None
    # Staff see them, the review note included, and get working links.
    seen = (await client.data(OF_USER, {"id": owner.id}, admin))["node"]
    assert [d["id"] for d in seen["kycDocuments"]] == [document["id"]]
    link = seen["kycDocuments"][0]["downloadUrl"]
    assert (await client.http.get(link)).content == PDF


async def test_link_expiry_is_bounded_and_links_cannot_be_altered(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    document = (await upload(client, user, PNG))["document"]
    for seconds in (59, 3601, -1):
        reply = await client.post(LINK, {"id": document["id"], "s": seconds}, token=user.access)
        assert reply["errors"][0]["extensions"]["code"] == "INVALID_INPUT", reply
    url = (await client.data(LINK, {"id": document["id"], "s": 3600}, user.access))["node"][
        "downloadUrl"
    ]
    assert (await client.http.get(url)).status_code == 200
    base, token = url.rsplit("/", 1)
    for altered in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        token[:10] + ("A" if token[10] != "A" else "B") + token[11:],  # the signed part
        "x" + token,
        "",
    ):
        response = await client.http.get(f"{base}/{altered}")
        assert response.status_code in (403, 404), altered
        if response.status_code == 403:
            assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await client.http.get(f"{base}/{token[:-1]}X")).status_code == 403


# ------------------------------------------------------------------------------ review


async def test_review_decides_each_document_and_the_user_may_resubmit(
    client: GraphQLHTTP, admin: str
) -> None:
    user = await sign_up(client)
    passport = (await upload(client, user, PDF, type="PASSPORT"))["document"]
    selfie = (await upload(client, user, JPEG, type="SELFIE"))["document"]

    # Approving needs the selfie approved too.
    refused = await review(
        client,
        admin,
        userId=user.id,
        approve=True,
        documents=[{"documentId": selfie["id"], "approve": False, "reason": "Too dark."}],
    )
    assert codes(refused) == ["INVALID_STATE"]
    assert {d["status"] for d in (await documents(client, user))["kycDocuments"]} == {"UPLOADED"}

    rejected = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="Your selfie is too dark.",
        note="Likely a genuine user; lighting only.",
        documents=[
            {"documentId": passport["id"], "approve": True},
            {"documentId": selfie["id"], "approve": False, "reason": "Too dark to see you."},
        ],
    )
    assert rejected["userErrors"] == [] and rejected["user"]["kycStatus"] == "REJECTED"
    assert rejected["user"]["kycMayResubmit"] is True
    me = await documents(client, user)
    by_type = {d["type"]: d for d in me["kycDocuments"]}
    assert by_type["PASSPORT"]["status"] == "APPROVED"
    assert by_type["SELFIE"]["status"] == "REJECTED"
    assert by_type["SELFIE"]["rejectionReason"] == "Too dark to see you."
    assert by_type["SELFIE"]["reviewedAt"] is not None
    # The internal note is staff's: null for the owner, there for staff.
    assert {d["reviewNote"] for d in me["kycDocuments"]} == {None}
    staff_view = (await client.data(OF_USER, {"id": user.id}, admin))["node"]["kycDocuments"]
    assert {d["reviewNote"] for d in staff_view} == {"Likely a genuine user; lighting only."}

    # Decided documents are not decided again.
    again = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="x",
        documents=[{"documentId": selfie["id"], "approve": True}],
    )
    assert codes(again) == ["INVALID_STATE"]

    # A new selfie puts the user back in the queue; then approval verifies them.
    await upload(client, user, PNG, type="SELFIE")
    assert (await documents(client, user))["kycStatus"] == "SUBMITTED"
    approved = await review(client, admin, userId=user.id, approve=True)
    assert approved["userErrors"] == [] and approved["user"]["kycStatus"] == "VERIFIED"
    statuses = [d["status"] for d in (await documents(client, user))["kycDocuments"]]
    assert statuses == ["APPROVED", "REJECTED", "APPROVED"]

    # Verified users upload nothing more.
    late = await upload(client, user, PNG, type="UTILITY_BILL")
    assert codes(late) == ["INVALID_STATE"]


async def test_a_final_rejection_stops_uploads(client: GraphQLHTTP, admin: str) -> None:
    user = await sign_up(client)
    await upload(client, user, PDF, type="NATIONAL_ID")
    await upload(client, user, JPEG, type="SELFIE")
    rejected = await review(
        client, admin, userId=user.id, approve=False, reason="Forged.", mayResubmit=False
    )
    assert rejected["user"]["kycStatus"] == "REJECTED"
    assert rejected["user"]["kycMayResubmit"] is False
    me = await documents(client, user)
    assert {(d["status"], d["mayResubmit"]) for d in me["kycDocuments"]} == {("REJECTED", False)}
    refused = await upload(client, user, PNG, type="PASSPORT")
    assert (
        codes(refused) == ["INVALID_STATE"]
        and "cannot be resubmitted" in (refused["userErrors"][0]["message"])
    )


async def test_review_refuses_documents_it_cannot_decide(client: GraphQLHTTP, admin: str) -> None:
    user, other = await sign_up(client), await sign_up(client)
    mine = (await upload(client, user, PDF, type="PASSPORT"))["document"]
    theirs = (await upload(client, other, PDF, type="PASSPORT"))["document"]

    foreign = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="x",
        documents=[{"documentId": theirs["id"], "approve": False, "reason": "x"}],
    )
    assert codes(foreign) == ["NOT_FOUND"]
    twice = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="x",
        documents=[{"documentId": mine["id"], "approve": True}] * 2,
    )
    assert codes(twice) == ["INVALID_INPUT"]
    no_reason = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="x",
        documents=[{"documentId": mine["id"], "approve": False}],
    )
    assert codes(no_reason) == ["INVALID_INPUT"]
    malformed = await review(
        client,
        admin,
        userId=user.id,
        approve=False,
        reason="x",
        documents=[{"documentId": "not-an-id", "approve": True}],
    )
    assert codes(malformed) == ["NOT_FOUND"]
    # Nothing above changed anything.
    me = await documents(client, user)
    assert me["kycStatus"] == "PENDING"
    assert [d["status"] for d in me["kycDocuments"]] == ["UPLOADED"]
    # Customers do not review.
    reply = await client.post(REVIEW_KYC, {"i": {"userId": other.id, "approve": True}}, user.access)
    assert reply["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# ------------------------------------------------------------------------------ staff search

SEARCH = (
    """query($s: String) { users(search: $s, first: 50) { edges { node { email fullName } } } }"""
)


async def test_search_matches_wildcards_literally_and_refuses_control_characters(
    client: GraphQLHTTP, admin: str
) -> None:
    tag = httpx.URL(client.base_url).port  # distinct per test server
    odd = await sign_up(client, fullName=f"Ada 100%_Real {tag}")
    plain = await sign_up(client, fullName=f"Ada 1000 Real {tag}")

    async def names(search: str) -> set[str]:
        found = (await client.data(SEARCH, {"s": search}, admin))["users"]["edges"]
        return {e["node"]["email"] for e in found}

    assert await names("100%_real") == {odd.email}  # case-insensitive, % and _ as themselves
    assert plain.email in await names(f"  ada 1000 real {tag} ")  # surrounding spaces trimmed
    assert await names("%") >= {odd.email} and plain.email not in await names("%")
    assert plain.email not in await names("_")
    assert plain.email not in await names("\\")
    for bad in ("a\x00b", "a\x1bb", "\u202e", "x" * 101):
        reply = await client.post(SEARCH, {"s": bad}, token=admin)
        assert reply["errors"][0]["extensions"]["code"] == "INVALID_INPUT", bad
        assert reply["data"] is None or reply["data"].get("users") is None


# ------------------------------------------------------------------------------ with S3


@pytest.fixture(scope="module")
def s3_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, str]]:
    """A Stacklo server storing documents in a bucket of a local S3 server (moto)."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"kyc-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        with own_server(
            databases,
            tmp_path_factory,
            "kyc_s3",
            STACKLO_STORAGE_URL=f"s3://{bucket}?region=eu-west-1&endpoint_url={endpoint}",
            STACKLO_S3_ACCESS_KEY_ID="testing",
            STACKLO_S3_SECRET_ACCESS_KEY="testing",
        ) as running:
            yield running, endpoint, bucket
    finally:
        moto.stop()


async def test_documents_go_to_s3_encrypted_and_links_are_presigned(
    s3_server: tuple[Server, str, str],
) -> None:
    server, endpoint, bucket = s3_server
    client = GraphQLHTTP(server.base_url)
    try:
        user = await sign_up(client)
        document = (await upload(client, user, PDF, type="PASSPORT"))["document"]
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        owner = str(uuid.UUID(base64.b64decode(user.id).decode().split(":", 1)[1]))
        assert len(keys) == 1 and re.fullmatch(rf"kyc/{owner}/[0-9a-f-]{{36}}", keys[0]), keys
        head = s3.head_object(Bucket=bucket, Key=keys[0])
        assert head["ServerSideEncryption"] in ("AES256", "aws:kms")
        assert head["ContentType"] == "application/pdf"
        assert not (Path(server.env["STACKLO_DATA_DIR"]) / "files").exists()

        url = (await client.data(LINK, {"id": document["id"], "s": 120}, user.access))["node"][
            "downloadUrl"
        ]
        assert url.startswith(f"{endpoint}/{bucket}/kyc/") and "X-Amz-Signature=" in url
        assert "X-Amz-Expires=120" in url
        got = await client.http.get(url)
        assert got.status_code == 200 and got.content == PDF
        # A refused file never reaches the bucket.
        await upload(client, user, EXE, file_name="x.png")
        assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 1
    finally:
        await client.aclose()


async def test_staff_list_each_users_own_documents_in_one_page(
    client: GraphQLHTTP, admin: str
) -> None:
    """User.kycDocuments is batched across a page of users: each still gets only their own."""
    tag = uuid.uuid4().hex[:10]
    users = [await sign_up(client, fullName=f"Batch {tag} {n}") for n in range(3)]
    await upload(client, users[0], PDF, type="PASSPORT")
    await upload(client, users[0], JPEG, type="SELFIE")
    await upload(client, users[2], PNG, type="UTILITY_BILL")
    page = (
        await client.data(
            """query($s: String) { users(search: $s, first: 10) { edges { node {
              email kycDocuments { type } } } } }""",
            {"s": f"Batch {tag}"},
            admin,
        )
    )["users"]["edges"]
    found = {e["node"]["email"]: [d["type"] for d in e["node"]["kycDocuments"]] for e in page}
    assert found == {
        users[0].email: ["PASSPORT", "SELFIE"],
        users[1].email: [],
        users[2].email: ["UTILITY_BILL"],
    }
