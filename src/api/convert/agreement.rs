//! Agreements across the proto boundary.

use chrono::{DateTime, Utc};

use super::enums::EnumError;
use super::{by_name, enums, instant, purpose_at, purpose_out, timestamp};
use crate::api::pb;
use crate::domain::agreement::{
    Agreement, AgreementId, AgreementStatus, AgreementTerms, ConsentRequirement, ConsumerTerms,
    FieldGrant, LawfulBasis, LawfulBasisCode,
};
use crate::domain::subject::parse_date;
use crate::domain::{AgencyCode, RecordClassId, Role, Violations};

const BASIS_PREFIX: &str = "LAWFUL_BASIS_CODE_";
const CONSENT_PREFIX: &str = "CONSENT_REQUIREMENT_";

fn lawful_basis_code(value: i32) -> Result<LawfulBasisCode, EnumError> {
    let name = enums::required::<pb::LawfulBasisCode>(value)?.as_str_name();
    by_name(Some(name), BASIS_PREFIX, LawfulBasisCode::from_code)
        .ok_or(EnumError::Unsupported(name))
}

fn lawful_basis_code_out(code: LawfulBasisCode) -> i32 {
    let name = format!("{BASIS_PREFIX}{}", code.code().to_ascii_uppercase());
    pb::LawfulBasisCode::from_str_name(&name).map_or(0, |c| c as i32)
}

fn consent_requirement(value: i32) -> Result<ConsentRequirement, EnumError> {
    let name = enums::required::<pb::ConsentRequirement>(value)?.as_str_name();
    by_name(Some(name), CONSENT_PREFIX, ConsentRequirement::from_code)
        .ok_or(EnumError::Unsupported(name))
}

fn consent_requirement_out(c: ConsentRequirement) -> i32 {
    let name = format!("{CONSENT_PREFIX}{}", c.code().to_ascii_uppercase());
    pb::ConsentRequirement::from_str_name(&name).map_or(0, |c| c as i32)
}

fn state_out(s: AgreementStatus) -> i32 {
    let name = format!("AGREEMENT_STATE_{}", s.code().to_ascii_uppercase());
    pb::AgreementState::from_str_name(&name).map_or(0, |s| s as i32)
}

/// The terms of an agreement in a request, checked value by value (the
/// service checks them as a whole).
fn terms(a: &pb::Agreement, v: &mut Violations) -> Option<AgreementTerms> {
    let provider = v.check("agreement.provider", AgencyCode::parse_name(&a.provider));
    let mut consumers = Vec::new();
    for (i, c) in a.consumers.iter().enumerate() {
        let p = format!("agreement.consumers[{i}]");
        let agency = v.check(&format!("{p}.agency"), AgencyCode::parse_name(&c.agency));
        let mut grants = Vec::new();
        for (j, g) in c.grants.iter().enumerate() {
            let gp = format!("{p}.grants[{j}]");
            let role = v.check(&format!("{gp}.role"), Role::parse(&g.role));
            let class = v.check(
                &format!("{gp}.record_class"),
                RecordClassId::parse_name(&g.record_class),
            );
            if let (Some(role), Some(record_class)) = (role, class) {
                grants.push(FieldGrant {
                    role,
                    record_class,
                    fields: g.fields.iter().cloned().collect(),
                });
            }
        }
        if let Some(agency) = agency {
            consumers.push(ConsumerTerms { agency, grants });
        }
    }
    let record_classes: Vec<RecordClassId> = a
        .record_classes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            v.check(
                &format!("agreement.record_classes[{i}]"),
                RecordClassId::parse_name(c),
            )
        })
        .collect();
    let purposes: Vec<_> = a
        .purposes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| purpose_at(*p, &format!("agreement.purposes[{i}]"), v))
        .collect();
    let mut lawful_bases = Vec::new();
    for (i, b) in a.lawful_bases.iter().enumerate() {
        if let Some(code) = v.check(
            &format!("agreement.lawful_bases[{i}].code"),
            lawful_basis_code(b.code),
        ) {
            lawful_bases.push(LawfulBasis {
                code,
                reference: b.reference.trim().to_owned(),
            });
        }
    }
    let consent = v.check("agreement.consent", consent_requirement(a.consent));
    let time = |t: &Option<prost_types::Timestamp>, field: &str, v: &mut Violations| {
        let parsed = t.as_ref().map(instant);
        match parsed {
            None => {
                v.add(field, "is required");
                None
            }
            Some(None) => {
                v.add(field, "is not a valid instant");
                None
            }
            Some(Some(t)) => Some(t),
        }
    };
    let valid_from = time(&a.valid_from, "agreement.valid_from", v);
    let valid_until = time(&a.valid_until, "agreement.valid_until", v);
    let review_date = if a.review_date.is_empty() {
        v.add("agreement.review_date", "is required");
        None
    } else {
        v.check("agreement.review_date", parse_date(&a.review_date))
    };
    Some(AgreementTerms {
        title: a.title.trim().to_owned(),
        provider: provider?,
        consumers,
        record_classes,
        purposes,
        lawful_bases,
        consent: consent?,
        covers_sealed: a.covers_sealed,
        valid_from: valid_from?,
        valid_until: valid_until?,
        review_date: review_date?,
    })
}

fn agreement_id(name: &str, field: &str, v: &mut Violations) -> Option<AgreementId> {
    v.check(field, AgreementId::parse_name(name))
}

/// The terms of a CreateAgreement request.
pub fn create_agreement(req: pb::CreateAgreementRequest) -> Result<AgreementTerms, Violations> {
    let mut v = Violations::new();
    let Some(a) = req.agreement else {
        return Err(Violations::one("agreement", "is required"));
    };
    let terms = terms(&a, &mut v);
    v.into_result(|| terms)
}

/// The agreement and new terms of a ReviseAgreement request.
pub fn revise_agreement(
    req: pb::ReviseAgreementRequest,
) -> Result<(AgreementId, AgreementTerms), Violations> {
    let mut v = Violations::new();
    let Some(a) = req.agreement else {
        return Err(Violations::one("agreement", "is required"));
    };
    let id = agreement_id(&a.name, "agreement.name", &mut v);
    let terms = terms(&a, &mut v);
    v.into_result(|| Some((id?, terms?)))
}

/// The agreement, version and etag of an ApproveAgreement request.
pub fn approve_agreement(
    req: pb::ApproveAgreementRequest,
) -> Result<(AgreementId, i64, String), Violations> {
    let mut v = Violations::new();
    let id = agreement_id(&req.name, "name", &mut v);
    if req.version < 1 {
        v.add("version", "must name the version approved (from 1)");
    }
    v.into_result(|| Some((id?, req.version, req.etag)))
}

/// The agreement, reason and etag of a SuspendAgreement request.
pub fn suspend_agreement(
    req: pb::SuspendAgreementRequest,
) -> Result<(AgreementId, String, String), Violations> {
    let mut v = Violations::new();
    let id = agreement_id(&req.name, "name", &mut v);
    v.into_result(|| Some((id?, req.reason, req.etag)))
}

/// The agreement and etag of a ReinstateAgreement request.
pub fn reinstate_agreement(
    req: pb::ReinstateAgreementRequest,
) -> Result<(AgreementId, String), Violations> {
    let mut v = Violations::new();
    let id = agreement_id(&req.name, "name", &mut v);
    v.into_result(|| Some((id?, req.etag)))
}

/// The agreement and version (`None`: the latest) of a GetAgreement request.
pub fn get_agreement(
    req: &pb::GetAgreementRequest,
) -> Result<(AgreementId, Option<i64>), Violations> {
    let mut v = Violations::new();
    let id = agreement_id(&req.name, "name", &mut v);
    if req.version < 0 {
        v.add("version", "must not be negative");
    }
    v.into_result(|| Some((id?, (req.version > 0).then_some(req.version))))
}

/// GetAgreementUsage input.
pub fn agreement_usage(
    req: &pb::GetAgreementUsageRequest,
) -> Result<(AgreementId, super::TimeRange), Violations> {
    let mut v = Violations::new();
    let id = agreement_id(&req.name, "name", &mut v);
    let range = super::audit::time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    v.into_result(|| Some((id?, range)))
}

/// The proto form of an agreement's usage.
pub fn agreement_usage_out(u: crate::service::AgreementUsage) -> pb::GetAgreementUsageResponse {
    pb::GetAgreementUsageResponse {
        name: u.agreement.resource_name(),
        usage: u
            .rows
            .into_iter()
            .map(|r| pb::AgreementUsage {
                agency: format!("agencies/{}", r.agency),
                purpose: purpose_out(r.purpose) as i32,
                role: r.role,
                disclosures: i64::try_from(r.disclosures).unwrap_or(i64::MAX),
            })
            .collect(),
        total: i64::try_from(u.total).unwrap_or(i64::MAX),
    }
}

/// The proto form of an agreement version as it stands at `now`.
pub fn agreement_out(a: Agreement, now: DateTime<Utc>) -> pb::Agreement {
    let state = state_out(a.status_at(now));
    let awaiting = if a.status == AgreementStatus::Draft {
        a.awaiting().iter().map(|c| c.resource_name()).collect()
    } else {
        Vec::new()
    };
    let etag = a.etag();
    let t = a.terms;
    pb::Agreement {
        name: a.id.resource_name(),
        version: a.version,
        title: t.title,
        provider: t.provider.resource_name(),
        consumers: t
            .consumers
            .into_iter()
            .map(|c| pb::ConsumerTerms {
                agency: c.agency.resource_name(),
                grants: c
                    .grants
                    .into_iter()
                    .map(|g| pb::FieldGrant {
                        role: g.role.as_str().to_owned(),
                        record_class: g.record_class.resource_name(),
                        fields: g.fields.into_iter().collect(),
                    })
                    .collect(),
            })
            .collect(),
        record_classes: t
            .record_classes
            .iter()
            .map(RecordClassId::resource_name)
            .collect(),
        purposes: t
            .purposes
            .into_iter()
            .map(|p| purpose_out(Some(p)) as i32)
            .collect(),
        lawful_bases: t
            .lawful_bases
            .into_iter()
            .map(|b| pb::LawfulBasis {
                code: lawful_basis_code_out(b.code),
                reference: b.reference,
            })
            .collect(),
        consent: consent_requirement_out(t.consent),
        covers_sealed: t.covers_sealed,
        valid_from: Some(timestamp(t.valid_from)),
        valid_until: Some(timestamp(t.valid_until)),
        review_date: t.review_date.format("%Y-%m-%d").to_string(),
        state,
        approvals: a
            .approvals
            .into_iter()
            .map(|p| pb::Approval {
                agency: p.agency.resource_name(),
                principal: p.principal,
                approve_time: Some(timestamp(p.time)),
            })
            .collect(),
        awaiting_approval: awaiting,
        suspension: a.suspension.map(|s| pb::Suspension {
            agency: s.agency.resource_name(),
            principal: s.principal,
            suspend_time: Some(timestamp(s.time)),
            reason: s.reason,
        }),
        created_by: a.created_by.resource_name(),
        create_time: Some(timestamp(a.create_time)),
        update_time: Some(timestamp(a.update_time)),
        etag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proto_enum_value_maps_to_a_domain_value_and_back() {
        for value in 1..=14 {
            let code = lawful_basis_code(value).unwrap();
            assert_eq!(lawful_basis_code_out(code), value);
        }
        assert!(lawful_basis_code(0).is_err());
        assert!(lawful_basis_code(99).is_err());
        for value in 1..=2 {
            let c = consent_requirement(value).unwrap();
            assert_eq!(consent_requirement_out(c), value);
        }
        assert!(consent_requirement(0).is_err());
        for (status, state) in [
            (AgreementStatus::Draft, pb::AgreementState::Draft),
            (AgreementStatus::Active, pb::AgreementState::Active),
            (AgreementStatus::Suspended, pb::AgreementState::Suspended),
            (AgreementStatus::Superseded, pb::AgreementState::Superseded),
            (AgreementStatus::Expired, pb::AgreementState::Expired),
        ] {
            assert_eq!(state_out(status), state as i32);
        }
    }
}
