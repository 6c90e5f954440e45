"""An independent client: Python grpcio stubs generated from proto/, over
mutual TLS (grpc.ssl_channel_credentials), with a staff token made here by
PyJWT and cryptography.

Usage: client.py SETUP.json PROTO_DIR
SETUP.json names: address (HOST:PORT), ca, cert, key (PEM files), agency,
signing_key (PEM, P-256), kid, iss and aud of the agency's token issuer.
Exits non-zero (with the reason) if the server does not behave.
"""

import importlib
import json
import os
import sys
import tempfile
import time

import grpc
import jwt
from grpc_tools import protoc


def generate(proto_dir: str, out_dir: str) -> None:
    import grpc_tools

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = [
        os.path.join("accord", "v1", name)
        for name in sorted(os.listdir(os.path.join(proto_dir, "accord", "v1")))
        if name.endswith(".proto")
    ]
    args = ["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main(args + files) != 0:
        raise SystemExit("protoc failed")


def nhs_number(base: int) -> str:
    while True:
        digits = f"{base:09d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1)))
        check = 11 - total % 11
        if check != 10:
            return digits + str(0 if check == 11 else check)
        base += 1


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def staff_token(setup: dict) -> str:
    now = int(time.time())
    claims = {
        "iss": setup["iss"], "aud": setup["aud"], "sub": "py-1", "roles": ["social_worker"],
        "iat": now, "nbf": now, "exp": now + 300,
    }
    return jwt.encode(claims, read(setup["signing_key"]), algorithm="ES256", headers={"kid": setup["kid"]})


def main() -> None:
    with open(sys.argv[1]) as f:
        setup = json.load(f)
    proto_dir = sys.argv[2]
    out = tempfile.mkdtemp(prefix="accord-py-")
    generate(proto_dir, out)
    sys.path.insert(0, out)
    m = {n: importlib.import_module(f"accord.v1.{n}_pb2") for n in ["agency", "subject", "record", "common", "event"]}
    g = {n: importlib.import_module(f"accord.v1.{n}_pb2_grpc") for n in ["agency", "subject", "record", "event"]}

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(setup["ca"]),
        private_key=read(setup["key"]),
        certificate_chain=read(setup["cert"]),
    )
    # The server's certificate names localhost.
    port = setup["address"].rsplit(":", 1)[1]
    channel = grpc.secure_channel(f"localhost:{port}", credentials)
    staff = [("authorization", f"Bearer {staff_token(setup)}")]

    agencies = g["agency"].AgencyServiceStub(channel)
    listed = agencies.ListAgencies(m["agency"].ListAgenciesRequest(), metadata=staff).agencies
    assert [a.code for a in listed] == [setup["agency"]], listed
    try:
        agencies.ListAgencies(m["agency"].ListAgenciesRequest())
        raise SystemExit("a call without a token was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        assert "bearer token" in e.details(), e.details()

    subjects = g["subject"].SubjectServiceStub(channel)
    nhs = nhs_number(512345678)
    spaced = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    created = subjects.CreateSubject(
        m["subject"].CreateSubjectRequest(
            subject=m["subject"].Subject(
                identifiers=[m["subject"].Identifier(system=m["subject"].IDENTIFIER_SYSTEM_NHS_NUMBER, value=spaced)],
                demographics=m["subject"].Demographics(
                    given_name="Sam", family_name="Jones", birth_date="1980-07-01",
                    gender=m["subject"].ADMINISTRATIVE_GENDER_MALE, postcode="m1 1ae",
                ),
            ),
            purpose=m["common"].PURPOSE_DIRECT_CARE,
        ),
        metadata=staff,
    ).subject
    assert created.identifiers[0].value == nhs, created
    assert created.demographics.postcode == "M1 1AE", created

    try:
        bad = nhs[:9] + str((int(nhs[9]) + 1) % 10)
        subjects.CreateSubject(
            m["subject"].CreateSubjectRequest(
                subject=m["subject"].Subject(
                    identifiers=[m["subject"].Identifier(system=m["subject"].IDENTIFIER_SYSTEM_NHS_NUMBER, value=bad)],
                    demographics=created.demographics,
                ),
                purpose=m["common"].PURPOSE_DIRECT_CARE,
            ),
            metadata=staff,
        )
        raise SystemExit("an NHS number with a wrong check digit was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert "check digit" in e.details(), e.details()

    # The same person registered again, without the NHS number: refused as
    # a duplicate, naming the subject.
    sj = m["subject"]
    try:
        subjects.CreateSubject(
            sj.CreateSubjectRequest(
                subject=sj.Subject(
                    identifiers=[sj.Identifier(system=sj.IDENTIFIER_SYSTEM_LOCAL_REFERENCE, value="PY-1")],
                    demographics=created.demographics,
                ),
                purpose=m["common"].PURPOSE_DIRECT_CARE,
            ),
            metadata=staff,
        )
        raise SystemExit("a certain duplicate was registered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
        assert created.name in e.details(), e.details()

    # Matching explains itself field by field.
    matched = subjects.MatchSubjects(
        sj.MatchSubjectsRequest(
            demographics=sj.Demographics(
                given_name="Sam", family_name="Jonse", birth_date="1980-01-07",
                gender=sj.ADMINISTRATIVE_GENDER_MALE, postcode="M11AE",
            ),
            purpose=m["common"].PURPOSE_DIRECT_CARE,
        ),
        metadata=staff,
    ).candidates
    assert [c.subject.name for c in matched] == [created.name], matched
    birth = next(c for c in matched[0].contributions if c.field == "birth_date")
    assert birth.level == sj.MATCH_LEVEL_TRANSPOSED, birth
    assert "day and month swapped" in matched[0].explanation, matched[0].explanation

    # Merging subjects is for the operator's data-quality staff alone.
    try:
        subjects.MergeSubjects(
            sj.MergeSubjectsRequest(survivor=created.name, merged=matched[0].subject.name, note="same person"),
            metadata=staff,
        )
        raise SystemExit("an agency's staff merged subjects")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e

    records = g["record"].RecordServiceStub(channel)
    record = records.CreateRecord(
        m["record"].CreateRecordRequest(
            record=m["record"].Record(
                subject=created.name,
                record_class="recordClasses/health.summary",
                fields={
                    "registered_gp_practice": m["record"].FieldValue(string_value="B86001"),
                    "mental_health_concern": m["record"].FieldValue(boolean_value=False),
                },
            ),
            purpose=m["common"].PURPOSE_DIRECT_CARE,
        ),
        metadata=staff,
    ).record
    fetched = records.GetRecord(
        m["record"].GetRecordRequest(name=record.name, purpose=m["common"].PURPOSE_DIRECT_CARE), metadata=staff
    ).record
    assert fetched.fields["registered_gp_practice"].string_value == "B86001", fetched
    assert fetched.version == 1 and fetched.etag == record.etag, fetched

    # The joined-up view: demographics with their source, and the record.
    view = subjects.GetSubjectView(
        sj.GetSubjectViewRequest(subject=created.name, purpose=m["common"].PURPOSE_DIRECT_CARE),
        metadata=staff,
    ).view
    assert {d.source for d in view.demographics} == {"agencies/" + setup["agency"]}, view
    assert [r.name for r in view.records] == [record.name], view

    # Change notifications: subscribe, change the record, and consume the
    # event from a server stream (heartbeats passed over).
    events = g["event"].EventServiceStub(channel)
    e = m["event"]
    subscription = events.CreateSubscription(
        e.CreateSubscriptionRequest(
            subscription=e.Subscription(
                kinds=[e.EVENT_KIND_RECORD_UPDATED],
                purpose=m["common"].PURPOSE_DIRECT_CARE,
                role="social_worker",
                cohort=e.SUBSCRIPTION_COHORT_HELD,
            )
        ),
        metadata=staff,
    ).subscription
    updated = records.UpdateRecord(
        m["record"].UpdateRecordRequest(
            record=m["record"].Record(
                name=record.name,
                etag=record.etag,
                fields={
                    "registered_gp_practice": m["record"].FieldValue(string_value="B86002"),
                    "mental_health_concern": m["record"].FieldValue(boolean_value=False),
                },
            ),
            purpose=m["common"].PURPOSE_DIRECT_CARE,
        ),
        metadata=staff,
    ).record
    stream = events.WatchEvents(e.WatchEventsRequest(subscription=subscription.name), metadata=staff, timeout=60)
    told = None
    for n, message in enumerate(stream):
        if message.WhichOneof("item") == "event":
            told = message.event
            break
        assert n < 100, "no event among 100 heartbeats"
    stream.cancel()
    assert told is not None, "the stream ended without an event"
    assert told.kind == e.EVENT_KIND_RECORD_UPDATED, told
    assert told.resource == record.name and told.version == updated.version == 2, told
    assert told.subject == created.name and told.cursor, told
    after = events.ListEvents(e.ListEventsRequest(subscription=subscription.name, cursor=told.cursor), metadata=staff)
    assert len(after.events) == 0 and after.next_cursor, after
    print("python client: ok")


if __name__ == "__main__":
    main()
