"""An independent client: Python grpcio stubs generated from proto/.

Usage: client.py HOST:PORT PROTO_DIR
Exits non-zero (with the reason) if the server does not behave.
"""

import importlib
import os
import sys
import tempfile

import grpc
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


def main() -> None:
    address, proto_dir = sys.argv[1], sys.argv[2]
    out = tempfile.mkdtemp(prefix="accord-py-")
    generate(proto_dir, out)
    sys.path.insert(0, out)
    m = {n: importlib.import_module(f"accord.v1.{n}_pb2") for n in ["agency", "subject", "record", "common"]}
    g = {n: importlib.import_module(f"accord.v1.{n}_pb2_grpc") for n in ["agency", "subject", "record"]}

    channel = grpc.insecure_channel(address)
    operator = [("x-accord-agency", "accord-ops"), ("x-accord-principal", "ops"), ("x-accord-roles", "operator")]
    staff = [("x-accord-agency", "py-council"), ("x-accord-principal", "py-1"), ("x-accord-roles", "social_worker")]

    agencies = g["agency"].AgencyServiceStub(channel)
    agencies.CreateAgency(
        m["agency"].CreateAgencyRequest(
            agency=m["agency"].Agency(code="py-council", display_name="Python Council", kind=m["agency"].AGENCY_KIND_COUNCIL)
        ),
        metadata=operator,
    )

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
    print("python client: ok")


if __name__ == "__main__":
    main()
